#!/usr/bin/python3
"""waifu2x UpConv7 and CUNet (Real-CUGAN's UpCunet2x) in PyTorch, written here from the
published descriptions (waifu2x's upconv_7 and cunet models; bilibili's Real-CUGAN
upcunet_v3), with Real-CUGAN's parameter names: kiln's independent reference for these
networks (tests/reference/unet_gan_vs_torch.py) and the PyTorch peer of the benchmark.

Both pad none of their convolutions: UpConv7 maps [n + 14] to [2n], CUNet 2x [n + 36] to
[2n], 3x [n + 28] to [3n], 4x [n + 38] to [4n], 1x [n + 56] to [n] (n even for 2x and 4x,
a multiple of 4 otherwise).

load_safetensors() reads what `kiln convert` writes (F32/F16/BF16) without the safetensors
package, which Debian 12 does not ship.
"""

import json
import struct

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F


def lrelu(x):
    return F.leaky_relu(x, 0.1)


class UpConv7(nn.Module):
    def __init__(self, in_ch=3, out_ch=3):
        super().__init__()
        widths = [16, 32, 64, 128, 128, 256]
        layers = []
        cin = in_ch
        for w in widths:
            layers += [nn.Conv2d(cin, w, 3, 1, 0), nn.LeakyReLU(0.1)]
            cin = w
        layers.append(nn.ConvTranspose2d(256, out_ch, 4, 2, 3))
        self.net = nn.Sequential(*layers)

    def forward(self, x):
        return self.net(x)


class SEBlock(nn.Module):
    def __init__(self, c, reduction=8):
        super().__init__()
        self.conv1 = nn.Conv2d(c, c // reduction, 1, 1, 0)
        self.conv2 = nn.Conv2d(c // reduction, c, 1, 1, 0)

    def forward(self, x):
        s = x.mean(dim=(2, 3), keepdim=True)
        s = torch.sigmoid(self.conv2(F.relu(self.conv1(s))))
        return x * s


class UNetConv(nn.Module):
    def __init__(self, cin, mid, cout, se):
        super().__init__()
        self.conv = nn.Sequential(nn.Conv2d(cin, mid, 3, 1, 0), nn.LeakyReLU(0.1),
                                  nn.Conv2d(mid, cout, 3, 1, 0), nn.LeakyReLU(0.1))
        self.seblock = SEBlock(cout) if se else None

    def forward(self, x):
        x = self.conv(x)
        return self.seblock(x) if self.seblock is not None else x


def crop(x, by):
    return x[:, :, by:-by, by:-by]


class UNet1(nn.Module):
    def __init__(self, in_ch, out_ch, scale):
        super().__init__()
        self.conv1 = UNetConv(in_ch, 32, 64, se=False)
        self.conv1_down = nn.Conv2d(64, 64, 2, 2, 0)
        self.conv2 = UNetConv(64, 128, 64, se=True)
        self.conv2_up = nn.ConvTranspose2d(64, 64, 2, 2, 0)
        self.conv3 = nn.Conv2d(64, 64, 3, 1, 0)
        if scale == 2:
            self.conv_bottom = nn.ConvTranspose2d(64, out_ch, 4, 2, 3)
        elif scale == 3:
            self.conv_bottom = nn.ConvTranspose2d(64, out_ch, 5, 3, 2)
        else:
            self.conv_bottom = nn.Conv2d(64, out_ch, 3, 1, 0)

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(lrelu(self.conv1_down(x1)))
        x2 = lrelu(self.conv2_up(x2))
        x3 = lrelu(self.conv3(crop(x1, 4) + x2))
        return self.conv_bottom(x3)


class UNet2(nn.Module):
    def __init__(self, in_ch, out_ch):
        super().__init__()
        self.conv1 = UNetConv(in_ch, 32, 64, se=False)
        self.conv1_down = nn.Conv2d(64, 64, 2, 2, 0)
        self.conv2 = UNetConv(64, 64, 128, se=True)
        self.conv2_down = nn.Conv2d(128, 128, 2, 2, 0)
        self.conv3 = UNetConv(128, 256, 128, se=True)
        self.conv3_up = nn.ConvTranspose2d(128, 128, 2, 2, 0)
        self.conv4 = UNetConv(128, 64, 64, se=True)
        self.conv4_up = nn.ConvTranspose2d(64, 64, 2, 2, 0)
        self.conv5 = nn.Conv2d(64, 64, 3, 1, 0)
        self.conv_bottom = nn.Conv2d(64, out_ch, 3, 1, 0)

    def forward(self, x):
        x1 = self.conv1(x)
        x2 = self.conv2(lrelu(self.conv1_down(x1)))
        x3 = self.conv3(lrelu(self.conv2_down(x2)))
        x3 = lrelu(self.conv3_up(x3))
        x4 = self.conv4(crop(x2, 4) + x3)
        x4 = lrelu(self.conv4_up(x4))
        x5 = lrelu(self.conv5(crop(x1, 16) + x4))
        return self.conv_bottom(x5)


class CUNet(nn.Module):
    """scale 2: unet1 ends in a 4x4 stride-2 transposed convolution; 3: a 5x5 stride-3 one
    (Real-CUGAN's UpCunet3x); 1: a 3x3 convolution; 4: Real-CUGAN's UpCunet4x, the 2x UNets
    at 64 channels, conv_final, crop 1, a 2x pixel shuffle, plus the input without its
    19-pixel border upsampled by 4 (nearest), which its program adds."""

    def __init__(self, scale=2, in_ch=3, out_ch=3):
        super().__init__()
        self.scale = scale
        mid = 64 if scale == 4 else out_ch
        self.unet1 = UNet1(in_ch, mid, 2 if scale == 4 else scale)
        self.unet2 = UNet2(mid, mid)
        if scale == 4:
            self.conv_final = nn.Conv2d(64, 4 * out_ch, 3, 1, 0)

    def forward(self, x):
        z = self.unet1(x)
        y = crop(z, 20) + self.unet2(z)
        if self.scale != 4:
            return y
        y = F.pixel_shuffle(crop(self.conv_final(y), 1), 2)
        return y + F.interpolate(crop(x, BORDER["cunet4"]), scale_factor=4, mode="nearest")


BORDER = {"upconv7": 7, "cunet2": 18, "cunet3": 14, "cunet4": 19, "cunet1": 28}


def build(arch):
    if arch == "upconv7":
        return UpConv7()
    if arch == "cunet2":
        return CUNet(scale=2)
    if arch == "cunet1":
        return CUNet(scale=1)
    if arch == "cunet3":
        return CUNet(scale=3)
    if arch == "cunet4":
        return CUNet(scale=4)
    raise ValueError(f"unknown arch {arch!r}")


def load_safetensors(path):
    """{name: float32 numpy array} and the metadata map of a .safetensors file."""
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(n))
        data = f.read()
    meta = header.pop("__metadata__", {})
    out = {}
    for name, t in header.items():
        b, e = t["data_offsets"]
        raw = data[b:e]
        if t["dtype"] == "F32":
            a = np.frombuffer(raw, dtype="<f4")
        elif t["dtype"] == "F16":
            a = np.frombuffer(raw, dtype="<f2").astype(np.float32)
        elif t["dtype"] == "BF16":
            a = (np.frombuffer(raw, dtype="<u2").astype(np.uint32) << 16).view(np.float32)
        else:
            raise ValueError(f"{path}: {name}: dtype {t['dtype']}")
        out[name] = a.reshape(t["shape"]).astype(np.float32)
    return out, meta


def arch_of(meta):
    """The torch arch name for kiln convert's metadata block."""
    arch = meta.get("kiln.arch")
    if arch == "UpConv7":
        return "upconv7"
    if arch == "CUNet":
        return "cunet%d" % json.loads(meta["kiln.config"])["scale"]
    raise ValueError(f"not a kiln-converted UpConv7/CUNet file (kiln.arch = {arch!r})")


def load_model(path):
    """The network of a kiln-converted file, with its weights, in eval mode."""
    tensors, meta = load_safetensors(path)
    arch = arch_of(meta)
    model = build(arch)
    model.load_state_dict({k: torch.from_numpy(v.copy()) for k, v in tensors.items()}, strict=True)
    return arch, model.eval()
