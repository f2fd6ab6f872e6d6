// Recognises Real-ESRGAN's ncnn graphs (RRDBNet: realesrgan-x4plus, -x4plus-anime;
// SRVGGNetCompact: realesr-animevideov3-x2/x3/x4) from their layer structure, checks the
// non-conv ops match the architecture, and maps the weights to canonical PyTorch names.
#pragma once

#include "weights/arch.h"
#include "weights/ncnn.h"

namespace kiln::weights {

// core::Error(UNSUPPORTED) listing the layer-type counts for an unrecognised graph, or saying
// which op deviates (interpolation mode, activation slope, residual scaling, ...).
DetectedModel import_ncnn(const NcnnGraph& graph);

}  // namespace kiln::weights
