"""A UNet2DConditionModel-layout network in plain PyTorch.

Module names reproduce the parameter keys of diffusers' UNet2DConditionModel
(SD 1.x style: Transformer2DModel with 1x1-conv proj_in/proj_out, or Linear when
use_linear_projection is set as in SD 2), so `state_dict()` is a diffusers state
dict. Only the subset of the config that kiln implements is supported:
positional time embedding, "default" resnet time-embedding norm, DownBlock2D /
CrossAttnDownBlock2D, UNetMidBlock2DCrossAttn, UpBlock2D / CrossAttnUpBlock2D,
GEGLU feed-forward, one transformer layer per block.

The math follows diffusers' definitions (written independently here):
  * timestep embedding: sinusoidal, half = C/2 frequencies
    exp(-ln(10000) * i / (half - freq_shift)), [sin, cos] flipped to [cos, sin]
    when flip_sin_to_cos; then linear_1 -> SiLU -> linear_2.
  * ResnetBlock2D: x -> GN -> SiLU -> conv1 (+ time_emb_proj(SiLU(temb))) -> GN
    -> SiLU -> conv2, plus (1x1 conv_shortcut when channels change) residual.
  * Transformer2DModel: GN (eps 1e-6) -> proj_in -> tokens -> BasicTransformerBlock
    (LayerNorm eps 1e-5: self-attn, cross-attn, GEGLU FF, each residual) ->
    proj_out, plus residual.
  * Attention: to_q/to_k/to_v without bias, to_out.0 with bias, softmax(QK^T /
    sqrt(head_dim)) V.
  * Downsample2D: 3x3 conv stride 2 padding 1. Upsample2D: nearest x2, 3x3 conv.
"""

import math

import torch
import torch.nn as nn
import torch.nn.functional as F

DIFFUSERS_VERSION = "0.40.0.dev0"  # the diffusers source the field list was read from


def default_config(**overrides):
    """Every field diffusers' UNet2DConditionModel.__init__ registers, with its
    default, overridden by `overrides`. This is what diffusers writes in config.json
    (plus _class_name and _diffusers_version)."""
    cfg = {
        "sample_size": None,
        "in_channels": 4,
        "out_channels": 4,
        "center_input_sample": False,
        "flip_sin_to_cos": True,
        "freq_shift": 0,
        "down_block_types": ["CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"],
        "mid_block_type": "UNetMidBlock2DCrossAttn",
        "up_block_types": ["UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"],
        "only_cross_attention": False,
        "block_out_channels": [320, 640, 1280, 1280],
        "layers_per_block": 2,
        "downsample_padding": 1,
        "mid_block_scale_factor": 1,
        "dropout": 0.0,
        "act_fn": "silu",
        "norm_num_groups": 32,
        "norm_eps": 1e-05,
        "cross_attention_dim": 1280,
        "transformer_layers_per_block": 1,
        "reverse_transformer_layers_per_block": None,
        "encoder_hid_dim": None,
        "encoder_hid_dim_type": None,
        "attention_head_dim": 8,
        "num_attention_heads": None,
        "dual_cross_attention": False,
        "use_linear_projection": False,
        "class_embed_type": None,
        "addition_embed_type": None,
        "addition_time_embed_dim": None,
        "num_class_embeds": None,
        "upcast_attention": False,
        "resnet_time_scale_shift": "default",
        "resnet_skip_time_act": False,
        "resnet_out_scale_factor": 1.0,
        "time_embedding_type": "positional",
        "time_embedding_dim": None,
        "time_embedding_act_fn": None,
        "timestep_post_act": None,
        "time_cond_proj_dim": None,
        "conv_in_kernel": 3,
        "conv_out_kernel": 3,
        "projection_class_embeddings_input_dim": None,
        "attention_type": "default",
        "class_embeddings_concat": False,
        "mid_block_only_cross_attention": None,
        "cross_attention_norm": None,
        "addition_embed_type_num_heads": 64,
    }
    for k, v in overrides.items():
        if k not in cfg:
            raise KeyError(f"not a UNet2DConditionModel config field: {k}")
        cfg[k] = v
    return cfg


# The model trained by tools/train_diffusion.py. attention_head_dim is, as in every
# SD 1.x config, the NUMBER of heads (diffusers' historical naming): 1 head.
FASHION_CONFIG = default_config(
    sample_size=32,
    in_channels=1,
    out_channels=1,
    down_block_types=["DownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D"],
    up_block_types=["CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "UpBlock2D"],
    block_out_channels=[32, 32, 64],
    layers_per_block=1,
    norm_num_groups=8,
    cross_attention_dim=64,
    attention_head_dim=1,
)

# Tiny SD 1.x-shaped config (4 levels, layers_per_block 2, attention in the first
# three down blocks, 2 heads) for the loader's key-mapping test.
TINY_SD_CONFIG = default_config(
    sample_size=16,
    in_channels=4,
    out_channels=4,
    block_out_channels=[4, 8, 8, 8],
    layers_per_block=2,
    norm_num_groups=2,
    cross_attention_dim=8,
    attention_head_dim=2,
)

# The trained net's layout with much smaller widths.
TINY_FASHION_CONFIG = dict(FASHION_CONFIG, block_out_channels=[4, 4, 8], norm_num_groups=2, cross_attention_dim=8)


_SUPPORTED = {
    "center_input_sample": False,
    "only_cross_attention": False,
    "mid_block_type": "UNetMidBlock2DCrossAttn",
    "dropout": 0.0,
    "act_fn": "silu",
    "transformer_layers_per_block": 1,
    "encoder_hid_dim_type": None,
    "num_attention_heads": None,
    "dual_cross_attention": False,
    "class_embed_type": None,
    "addition_embed_type": None,
    "upcast_attention": False,
    "resnet_time_scale_shift": "default",
    "resnet_skip_time_act": False,
    "resnet_out_scale_factor": 1.0,
    "time_embedding_type": "positional",
    "time_embedding_dim": None,
    "time_embedding_act_fn": None,
    "timestep_post_act": None,
    "time_cond_proj_dim": None,
    "conv_in_kernel": 3,
    "conv_out_kernel": 3,
    "attention_type": "default",
    "mid_block_only_cross_attention": None,
    "cross_attention_norm": None,
}


def timestep_embedding(timesteps, dim, flip_sin_to_cos=True, freq_shift=0.0, max_period=10000):
    half = dim // 2
    exponent = -math.log(max_period) * torch.arange(half, dtype=torch.float32) / (half - freq_shift)
    args = timesteps[:, None].float() * torch.exp(exponent)[None, :]
    emb = torch.cat([torch.sin(args), torch.cos(args)], dim=-1)
    if flip_sin_to_cos:
        emb = torch.cat([emb[:, half:], emb[:, :half]], dim=-1)
    if dim % 2 == 1:
        emb = F.pad(emb, (0, 1))
    return emb


class TimestepEmbedding(nn.Module):
    def __init__(self, in_dim, dim):
        super().__init__()
        self.linear_1 = nn.Linear(in_dim, dim)
        self.linear_2 = nn.Linear(dim, dim)

    def forward(self, x):
        return self.linear_2(F.silu(self.linear_1(x)))


class ResnetBlock2D(nn.Module):
    def __init__(self, cin, cout, temb, groups, eps):
        super().__init__()
        self.norm1 = nn.GroupNorm(groups, cin, eps=eps)
        self.conv1 = nn.Conv2d(cin, cout, 3, padding=1)
        self.time_emb_proj = nn.Linear(temb, cout)
        self.norm2 = nn.GroupNorm(groups, cout, eps=eps)
        self.conv2 = nn.Conv2d(cout, cout, 3, padding=1)
        self.conv_shortcut = nn.Conv2d(cin, cout, 1) if cin != cout else None

    def forward(self, x, temb):
        h = self.conv1(F.silu(self.norm1(x)))
        h = h + self.time_emb_proj(F.silu(temb))[:, :, None, None]
        h = self.conv2(F.silu(self.norm2(h)))
        if self.conv_shortcut is not None:
            x = self.conv_shortcut(x)
        return x + h


class Attention(nn.Module):
    def __init__(self, query_dim, context_dim, heads, head_dim):
        super().__init__()
        inner = heads * head_dim
        self.heads = heads
        self.scale = head_dim ** -0.5
        self.to_q = nn.Linear(query_dim, inner, bias=False)
        self.to_k = nn.Linear(context_dim, inner, bias=False)
        self.to_v = nn.Linear(context_dim, inner, bias=False)
        self.to_out = nn.ModuleList([nn.Linear(inner, query_dim), nn.Dropout(0.0)])

    def forward(self, x, context=None):
        context = x if context is None else context
        b, n, _ = x.shape
        m = context.shape[1]
        h = self.heads
        q = self.to_q(x)
        k = self.to_k(context)
        v = self.to_v(context)
        d = q.shape[-1] // h
        if h > 1:
            q = q.reshape(b, n, h, d).transpose(1, 2).reshape(b * h, n, d)
            k = k.reshape(b, m, h, d).transpose(1, 2).reshape(b * h, m, d)
            v = v.reshape(b, m, h, d).transpose(1, 2).reshape(b * h, m, d)
        scores = torch.baddbmm(
            torch.empty(q.shape[0], n, m, dtype=q.dtype), q, k.transpose(1, 2), beta=0, alpha=self.scale
        )
        out = torch.bmm(scores.softmax(dim=-1), v)
        if h > 1:
            out = out.reshape(b, h, n, d).transpose(1, 2).reshape(b, n, h * d)
        return self.to_out[0](out)


class GEGLU(nn.Module):
    def __init__(self, dim_in, dim_out):
        super().__init__()
        self.proj = nn.Linear(dim_in, dim_out * 2)

    def forward(self, x):
        x, gate = self.proj(x).chunk(2, dim=-1)
        return x * F.gelu(gate)


class FeedForward(nn.Module):
    def __init__(self, dim, mult=4):
        super().__init__()
        inner = dim * mult
        self.net = nn.ModuleList([GEGLU(dim, inner), nn.Dropout(0.0), nn.Linear(inner, dim)])

    def forward(self, x):
        return self.net[2](self.net[0](x))


class BasicTransformerBlock(nn.Module):
    def __init__(self, dim, heads, head_dim, context_dim):
        super().__init__()
        self.norm1 = nn.LayerNorm(dim, eps=1e-5)
        self.attn1 = Attention(dim, dim, heads, head_dim)
        self.norm2 = nn.LayerNorm(dim, eps=1e-5)
        self.attn2 = Attention(dim, context_dim, heads, head_dim)
        self.norm3 = nn.LayerNorm(dim, eps=1e-5)
        self.ff = FeedForward(dim)

    def forward(self, x, context):
        x = x + self.attn1(self.norm1(x))
        x = x + self.attn2(self.norm2(x), context)
        x = x + self.ff(self.norm3(x))
        return x


class Transformer2DModel(nn.Module):
    def __init__(self, heads, head_dim, channels, context_dim, groups, linear_proj):
        super().__init__()
        inner = heads * head_dim
        self.linear_proj = linear_proj
        self.norm = nn.GroupNorm(groups, channels, eps=1e-6)
        if linear_proj:
            self.proj_in = nn.Linear(channels, inner)
        else:
            self.proj_in = nn.Conv2d(channels, inner, 1)
        self.transformer_blocks = nn.ModuleList([BasicTransformerBlock(inner, heads, head_dim, context_dim)])
        if linear_proj:
            self.proj_out = nn.Linear(inner, channels)
        else:
            self.proj_out = nn.Conv2d(inner, channels, 1)

    def forward(self, x, context):
        b, c, hh, ww = x.shape
        res = x
        x = self.norm(x)
        if self.linear_proj:
            x = self.proj_in(x.permute(0, 2, 3, 1).reshape(b, hh * ww, c))
        else:
            x = self.proj_in(x)
            x = x.permute(0, 2, 3, 1).reshape(b, hh * ww, x.shape[1])
        for blk in self.transformer_blocks:
            x = blk(x, context)
        if self.linear_proj:
            x = self.proj_out(x)
            x = x.reshape(b, hh, ww, c).permute(0, 3, 1, 2)
        else:
            x = x.reshape(b, hh, ww, x.shape[-1]).permute(0, 3, 1, 2)
            x = self.proj_out(x)
        return x + res


class Downsample2D(nn.Module):
    def __init__(self, c, padding):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, stride=2, padding=padding)

    def forward(self, x):
        return self.conv(x)


class Upsample2D(nn.Module):
    def __init__(self, c):
        super().__init__()
        self.conv = nn.Conv2d(c, c, 3, padding=1)

    def forward(self, x, size=None):
        if size is None:
            x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        else:
            x = F.interpolate(x, size=size, mode="nearest")
        return self.conv(x)


class DownBlock(nn.Module):
    """DownBlock2D (attn=False) or CrossAttnDownBlock2D (attn=True)."""

    def __init__(self, cin, cout, temb, layers, groups, eps, attn, heads, context_dim, linear_proj, downsample, pad):
        super().__init__()
        self.resnets = nn.ModuleList(
            [ResnetBlock2D(cin if i == 0 else cout, cout, temb, groups, eps) for i in range(layers)]
        )
        if attn:
            self.attentions = nn.ModuleList(
                [Transformer2DModel(heads, cout // heads, cout, context_dim, groups, linear_proj) for _ in range(layers)]
            )
        else:
            self.attentions = None
        self.downsamplers = nn.ModuleList([Downsample2D(cout, pad)]) if downsample else None

    def forward(self, x, temb, context):
        outs = []
        for i, r in enumerate(self.resnets):
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
            outs.append(x)
        if self.downsamplers is not None:
            x = self.downsamplers[0](x)
            outs.append(x)
        return x, outs


class UpBlock(nn.Module):
    """UpBlock2D (attn=False) or CrossAttnUpBlock2D (attn=True)."""

    def __init__(self, cin, cout, prev, temb, layers, groups, eps, attn, heads, context_dim, linear_proj, upsample):
        super().__init__()
        res = []
        for i in range(layers):
            skip = cin if i == layers - 1 else cout
            rin = prev if i == 0 else cout
            res.append(ResnetBlock2D(rin + skip, cout, temb, groups, eps))
        self.resnets = nn.ModuleList(res)
        if attn:
            self.attentions = nn.ModuleList(
                [Transformer2DModel(heads, cout // heads, cout, context_dim, groups, linear_proj) for _ in range(layers)]
            )
        else:
            self.attentions = None
        self.upsamplers = nn.ModuleList([Upsample2D(cout)]) if upsample else None

    def forward(self, x, skips, temb, context, size=None):
        for i, r in enumerate(self.resnets):
            x = torch.cat([x, skips.pop()], dim=1)
            x = r(x, temb)
            if self.attentions is not None:
                x = self.attentions[i](x, context)
        if self.upsamplers is not None:
            x = self.upsamplers[0](x, size)
        return x


class MidBlock(nn.Module):
    """UNetMidBlock2DCrossAttn with one attention layer."""

    def __init__(self, c, temb, groups, eps, heads, context_dim, linear_proj):
        super().__init__()
        self.attentions = nn.ModuleList([Transformer2DModel(heads, c // heads, c, context_dim, groups, linear_proj)])
        self.resnets = nn.ModuleList([ResnetBlock2D(c, c, temb, groups, eps), ResnetBlock2D(c, c, temb, groups, eps)])

    def forward(self, x, temb, context):
        x = self.resnets[0](x, temb)
        x = self.attentions[0](x, context)
        return self.resnets[1](x, temb)


class UNet2DConditionModel(nn.Module):
    def __init__(self, config):
        super().__init__()
        for k, v in _SUPPORTED.items():
            if config.get(k, v) != v:
                raise ValueError(f"config field {k}={config[k]!r} is not supported (only {v!r})")
        self.config = dict(config)
        ch = list(config["block_out_channels"])
        n = len(ch)
        lpb = config["layers_per_block"]
        if not isinstance(lpb, int):
            raise ValueError("layers_per_block must be an int")
        groups = config["norm_num_groups"]
        eps = config["norm_eps"]
        heads = config["attention_head_dim"]  # SD naming: the number of heads
        if not isinstance(heads, int):
            raise ValueError("attention_head_dim must be an int")
        ctx = config["cross_attention_dim"]
        lin = config["use_linear_projection"]
        temb = ch[0] * 4
        self.flip_sin_to_cos = config["flip_sin_to_cos"]
        self.freq_shift = config["freq_shift"]
        self.time_proj_dim = ch[0]

        self.conv_in = nn.Conv2d(config["in_channels"], ch[0], 3, padding=1)
        self.time_embedding = TimestepEmbedding(ch[0], temb)
        self.down_blocks = nn.ModuleList()
        out = ch[0]
        for i, t in enumerate(config["down_block_types"]):
            cin, out = out, ch[i]
            if t not in ("DownBlock2D", "CrossAttnDownBlock2D"):
                raise ValueError(f"down block type {t} is not supported")
            self.down_blocks.append(
                DownBlock(cin, out, temb, lpb, groups, eps, t == "CrossAttnDownBlock2D", heads, ctx, lin,
                          i != n - 1, config["downsample_padding"])
            )
        self.mid_block = MidBlock(ch[-1], temb, groups, eps, heads, ctx, lin)
        self.up_blocks = nn.ModuleList()
        rev = list(reversed(ch))
        out = rev[0]
        for i, t in enumerate(config["up_block_types"]):
            if t not in ("UpBlock2D", "CrossAttnUpBlock2D"):
                raise ValueError(f"up block type {t} is not supported")
            prev, out = out, rev[i]
            cin = rev[min(i + 1, n - 1)]
            self.up_blocks.append(
                UpBlock(cin, out, prev, temb, lpb + 1, groups, eps, t == "CrossAttnUpBlock2D", heads, ctx, lin,
                        i != n - 1)
            )
        self.conv_norm_out = nn.GroupNorm(groups, ch[0], eps=eps)
        self.conv_out = nn.Conv2d(ch[0], config["out_channels"], 3, padding=1)

    def forward(self, sample, timesteps, encoder_hidden_states):
        b = sample.shape[0]
        if not torch.is_tensor(timesteps):
            timesteps = torch.tensor([timesteps], dtype=torch.float32)
        timesteps = timesteps.reshape(-1)
        if timesteps.shape[0] == 1 and b > 1:
            timesteps = timesteps.expand(b)
        t = timestep_embedding(timesteps, self.time_proj_dim, self.flip_sin_to_cos, self.freq_shift).to(sample.dtype)
        temb = self.time_embedding(t)
        x = self.conv_in(sample)
        skips = [x]
        for blk in self.down_blocks:
            x, outs = blk(x, temb, encoder_hidden_states)
            skips.extend(outs)
        x = self.mid_block(x, temb, encoder_hidden_states)
        nu = len(self.up_blocks)
        for i, blk in enumerate(self.up_blocks):
            block_skips = skips[-len(blk.resnets):]
            del skips[-len(blk.resnets):]
            size = None
            if i != nu - 1 and (sample.shape[2] % (2 ** (nu - 1)) or sample.shape[3] % (2 ** (nu - 1))):
                size = skips[-1].shape[2:]
            x = blk(x, block_skips, temb, encoder_hidden_states, size)
        x = self.conv_out(F.silu(self.conv_norm_out(x)))
        return x


# --------------------------------------------------------------------------
# diffusers <-> original LDM (CompVis) key names, for SD 1.x-style UNets.
# Generalises diffusers' scripts/convert_diffusers_to_original_stable_diffusion.py
# tables to any number of levels / layers_per_block and to down/up blocks with or
# without attention.


def diffusers_to_ldm_prefixes(config):
    """List of (diffusers_prefix, ldm_prefix) pairs (LDM without the
    'model.diffusion_model.' prefix)."""
    pairs = [
        ("time_embedding.linear_1.", "time_embed.0."),
        ("time_embedding.linear_2.", "time_embed.2."),
        ("conv_in.", "input_blocks.0.0."),
        ("conv_norm_out.", "out.0."),
        ("conv_out.", "out.2."),
    ]
    lpb = config["layers_per_block"]
    n = len(config["block_out_channels"])
    for i, t in enumerate(config["down_block_types"]):
        for j in range(lpb):
            k = (lpb + 1) * i + j + 1
            pairs.append((f"down_blocks.{i}.resnets.{j}.", f"input_blocks.{k}.0."))
            if t.startswith("CrossAttn"):
                pairs.append((f"down_blocks.{i}.attentions.{j}.", f"input_blocks.{k}.1."))
        if i != n - 1:
            pairs.append((f"down_blocks.{i}.downsamplers.0.conv.", f"input_blocks.{(lpb + 1) * (i + 1)}.0.op."))
    pairs.append(("mid_block.resnets.0.", "middle_block.0."))
    pairs.append(("mid_block.attentions.0.", "middle_block.1."))
    pairs.append(("mid_block.resnets.1.", "middle_block.2."))
    for i, t in enumerate(config["up_block_types"]):
        attn = t.startswith("CrossAttn")
        for j in range(lpb + 1):
            k = (lpb + 1) * i + j
            pairs.append((f"up_blocks.{i}.resnets.{j}.", f"output_blocks.{k}.0."))
            if attn:
                pairs.append((f"up_blocks.{i}.attentions.{j}.", f"output_blocks.{k}.1."))
        if i != n - 1:
            pairs.append((f"up_blocks.{i}.upsamplers.0.", f"output_blocks.{(lpb + 1) * i + lpb}.{2 if attn else 1}."))
    return pairs


_RESNET_LDM = [
    ("norm1.", "in_layers.0."),
    ("conv1.", "in_layers.2."),
    ("time_emb_proj.", "emb_layers.1."),
    ("norm2.", "out_layers.0."),
    ("conv2.", "out_layers.3."),
    ("conv_shortcut.", "skip_connection."),
]


def diffusers_key_to_ldm(key, config, prefix="model.diffusion_model."):
    for dp, lp in diffusers_to_ldm_prefixes(config):
        if key.startswith(dp):
            rest = key[len(dp):]
            if ".resnets." in dp:
                for a, b in _RESNET_LDM:
                    if rest.startswith(a):
                        rest = b + rest[len(a):]
                        break
                else:
                    raise KeyError(key)
            return prefix + lp + rest
    raise KeyError(f"no LDM name for {key}")
