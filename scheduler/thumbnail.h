// Gallery thumbnails: an area-averaged copy whose longer side is at most `max_side`.
#pragma once

#include "image/image.h"

namespace kiln::scheduler {

image::Image make_thumbnail(const image::Image& source, int max_side);

}  // namespace kiln::scheduler
