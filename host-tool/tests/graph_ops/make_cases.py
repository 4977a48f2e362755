"""Op-level oracle for nnblob's reference evaluator and passes.

Each case is a small torch module and the nnblob spec describing the same forward(). Most
cases write their spec out; the "pasted" ones take it from their own Python source: the
`__init__` lines (or `spec_modules`) and the body of `forward` exactly as written, which is what a
user pastes. The script randomizes weights and BatchNorm statistics, runs torch in eval mode and
writes `cases.json`: spec text, state_dict (key -> shape, values), inputs, torch's outputs and the
output names `forward` returns (a plain name, or null). Run it from this folder with a
virtualenv that has torch:  python make_cases.py
"""
import ast
import inspect
import json
import textwrap

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(20241128)


def randomize(m):
    for mod in m.modules():
        if isinstance(mod, (nn.BatchNorm1d, nn.BatchNorm2d)):
            mod.running_mean.uniform_(-0.5, 0.5)
            mod.running_var.uniform_(0.25, 2.0)
            mod.weight.data.uniform_(0.5, 1.5)
            mod.bias.data.uniform_(-0.5, 0.5)
        if isinstance(mod, nn.PReLU):
            mod.weight.data.uniform_(0.05, 0.5)
        if isinstance(mod, (nn.LayerNorm, nn.GroupNorm)):
            if mod.weight is not None:
                mod.weight.data.uniform_(0.5, 1.5)
            if mod.bias is not None:
                mod.bias.data.uniform_(-0.5, 0.5)
    return m.eval()


class GroupedDilated(nn.Module):
    spec = """
input x: [4, 9, 8]
c = Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False)
bn = BatchNorm2d(6)
p = PReLU(6)
forward:
    return p(bn(c(x)))
"""
    inputs = [(4, 9, 8)]

    def __init__(self):
        super().__init__()
        self.c = nn.Conv2d(4, 6, (3, 2), stride=(2, 1), padding=(1, 2), dilation=(2, 1), groups=2, bias=False)
        self.bn = nn.BatchNorm2d(6)
        self.p = nn.PReLU(6)

    def forward(self, x):
        return self.p(self.bn(self.c(x)))


class Conv1dBn(nn.Module):
    spec = """
input x: [3, 20]
c = Conv1d(3, 4, 5, stride=2, padding=2)
bn = BatchNorm1d(4, eps=1e-3)
forward:
    return F.silu(bn(c(x)))
"""
    inputs = [(3, 20)]

    def __init__(self):
        super().__init__()
        self.c = nn.Conv1d(3, 4, 5, stride=2, padding=2)
        self.bn = nn.BatchNorm1d(4, eps=1e-3)

    def forward(self, x):
        return F.silu(self.bn(self.c(x)))


class Activations(nn.Module):
    spec = """
input x: [2, 5, 5]
act = LeakyReLU(0.2)
forward:
    a = cat([gelu(x), gelu(x, approximate='tanh'), hardswish(x), hardsigmoid(x)], dim=1)
    b = cat([act(x), sigmoid(x), tanh(x), relu6(x), F.silu(x)], dim=1)
    return a, b
"""
    inputs = [(2, 5, 5)]
    scale = 5.0

    def __init__(self):
        super().__init__()
        self.act = nn.LeakyReLU(0.2)

    def forward(self, x):
        a = torch.cat([F.gelu(x), F.gelu(x, approximate="tanh"), F.hardswish(x), F.hardsigmoid(x)], dim=1)
        b = torch.cat([self.act(x), torch.sigmoid(x), torch.tanh(x), F.relu6(x), F.silu(x)], dim=1)
        return a, b


class Pools(nn.Module):
    spec = """
input x: [3, 11, 10]
mp = MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
ap = AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
ap2 = AvgPool2d((2, 3), stride=(1, 2), padding=(1, 1))
aap = AdaptiveAvgPool2d((4, 3))
forward:
    return mp(x), ap(x), ap2(x), aap(x), max_pool2d(x, 2, dilation=2), adaptive_avg_pool2d(x, (None, 7))
"""
    inputs = [(3, 11, 10)]

    def __init__(self):
        super().__init__()
        self.mp = nn.MaxPool2d(3, stride=2, padding=1, ceil_mode=True)
        self.ap = nn.AvgPool2d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.ap2 = nn.AvgPool2d((2, 3), stride=(1, 2), padding=(1, 1))
        self.aap = nn.AdaptiveAvgPool2d((4, 3))

    def forward(self, x):
        return (self.mp(x), self.ap(x), self.ap2(x), self.aap(x), F.max_pool2d(x, 2, dilation=2),
                F.adaptive_avg_pool2d(x, (None, 7)))


class Pools1d(nn.Module):
    spec = """
input x: [3, 23]
mp = MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
mp2 = MaxPool1d(4)
ap = AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
ap2 = AvgPool1d(4, stride=3, padding=2)
ap3 = AvgPool1d(2, stride=3, padding=1, ceil_mode=True)
aap = AdaptiveAvgPool1d(5)
amp = AdaptiveMaxPool1d(7)
amp2 = AdaptiveMaxPool1d((9,))
forward:
    return (mp(x), mp2(x), ap(x), ap2(x), ap3(x), aap(x), amp(x), amp2(x), adaptive_avg_pool1d(x, 1),
            adaptive_max_pool1d(x, 1), max_pool1d(x, 5, 3, 2, ceil_mode=True),
            avg_pool1d(x, 5, stride=1, padding=2, count_include_pad=False), max_pool1d(x, 3, dilation=2))
"""
    inputs = [(3, 23)]

    def __init__(self):
        super().__init__()
        self.mp = nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
        self.mp2 = nn.MaxPool1d(4)
        self.ap = nn.AvgPool1d(3, stride=2, padding=1, ceil_mode=True, count_include_pad=False)
        self.ap2 = nn.AvgPool1d(4, stride=3, padding=2)
        self.ap3 = nn.AvgPool1d(2, stride=3, padding=1, ceil_mode=True)
        self.aap = nn.AdaptiveAvgPool1d(5)
        self.amp = nn.AdaptiveMaxPool1d(7)
        self.amp2 = nn.AdaptiveMaxPool1d((9,))

    def forward(self, x):
        return (self.mp(x), self.mp2(x), self.ap(x), self.ap2(x), self.ap3(x), self.aap(x), self.amp(x),
                self.amp2(x), F.adaptive_avg_pool1d(x, 1), F.adaptive_max_pool1d(x, 1),
                F.max_pool1d(x, 5, 3, 2, ceil_mode=True),
                F.avg_pool1d(x, 5, stride=1, padding=2, count_include_pad=False),
                F.max_pool1d(x, 3, dilation=2))


class AdaptiveMax2d(nn.Module):
    spec = """
input x: [3, 11, 10]
amp = AdaptiveMaxPool2d((4, 3))
gmp = AdaptiveMaxPool2d(1)
forward:
    return amp(x), gmp(x), adaptive_max_pool2d(x, (None, 7)), adaptive_max_pool2d(x, (5, None)), adaptive_max_pool2d(x, 6)
"""
    inputs = [(3, 11, 10)]

    def __init__(self):
        super().__init__()
        self.amp = nn.AdaptiveMaxPool2d((4, 3))
        self.gmp = nn.AdaptiveMaxPool2d(1)

    def forward(self, x):
        return (self.amp(x), self.gmp(x), F.adaptive_max_pool2d(x, (None, 7)),
                F.adaptive_max_pool2d(x, (5, None)), F.adaptive_max_pool2d(x, 6))


class SensorCnn1d(nn.Module):
    """A small 1-D sensor CNN (3-axis accelerometer window -> 6 classes)."""
    spec = """
input x: [3, 64]
conv1 = Conv1d(3, 8, 5, padding=2)
bn1 = BatchNorm1d(8)
pool1 = MaxPool1d(2)
conv2 = Conv1d(8, 16, 3, padding=1, bias=False)
bn2 = BatchNorm1d(16)
pool2 = MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
gap = AdaptiveAvgPool1d(1)
fc = Linear(16, 6)
forward:
    y = pool1(relu(bn1(conv1(x))))
    y = pool2(relu(bn2(conv2(y))))
    return fc(flatten(gap(y), 1))
"""
    inputs = [(3, 64)]

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv1d(3, 8, 5, padding=2)
        self.bn1 = nn.BatchNorm1d(8)
        self.pool1 = nn.MaxPool1d(2)
        self.conv2 = nn.Conv1d(8, 16, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm1d(16)
        self.pool2 = nn.MaxPool1d(3, stride=2, padding=1, ceil_mode=True)
        self.gap = nn.AdaptiveAvgPool1d(1)
        self.fc = nn.Linear(16, 6)

    def forward(self, x):
        y = self.pool1(F.relu(self.bn1(self.conv1(x))))
        y = self.pool2(F.relu(self.bn2(self.conv2(y))))
        return self.fc(torch.flatten(self.gap(y), 1))


class ConvTranspose2dCase(nn.Module):
    spec = """
input x: [4, 5, 5]
up = ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
bn = BatchNorm2d(6)
up2 = ConvTranspose2d(4, 3, (2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2), bias=False)
up3 = ConvTranspose2d(4, 2, 4, stride=3, padding=2, output_padding=(2, 1), dilation=(2, 1))
forward:
    return relu(bn(up(x))), up2(x), up3(x)
"""
    inputs = [(4, 5, 5)]

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose2d(4, 6, 3, stride=2, padding=1, output_padding=1, groups=2)
        self.bn = nn.BatchNorm2d(6)
        self.up2 = nn.ConvTranspose2d(4, 3, (2, 3), stride=(2, 1), padding=(0, 1), dilation=(1, 2), bias=False)
        self.up3 = nn.ConvTranspose2d(4, 2, 4, stride=3, padding=2, output_padding=(2, 1), dilation=(2, 1))

    def forward(self, x):
        return F.relu(self.bn(self.up(x))), self.up2(x), self.up3(x)


class ConvTranspose1dCase(nn.Module):
    spec = """
input x: [4, 7]
up = ConvTranspose1d(4, 2, 4, stride=3, padding=2, output_padding=2, dilation=2, bias=False)
bn = BatchNorm1d(2)
dw = ConvTranspose1d(4, 4, 3, stride=2, groups=4)
forward:
    return bn(up(x)), sigmoid(dw(x))
"""
    inputs = [(4, 7)]

    def __init__(self):
        super().__init__()
        self.up = nn.ConvTranspose1d(4, 2, 4, stride=3, padding=2, output_padding=2, dilation=2, bias=False)
        self.bn = nn.BatchNorm1d(2)
        self.dw = nn.ConvTranspose1d(4, 4, 3, stride=2, groups=4)

    def forward(self, x):
        return self.bn(self.up(x)), torch.sigmoid(self.dw(x))


class SqueezeExcite(nn.Module):
    spec = """
input x: [8, 6, 6]
fc1 = Conv2d(8, 4, 1)
fc2 = Conv2d(4, 8, 1)
forward:
    s = adaptive_avg_pool2d(x, 1)
    s = hardsigmoid(fc2(relu(fc1(s))))
    y = x * s
    z = reshape(permute(y, [0, 2, 3, 1]), [1, -1, 8])
    return softmax(z, dim=-1), y + s
"""
    inputs = [(8, 6, 6)]

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Conv2d(8, 4, 1)
        self.fc2 = nn.Conv2d(4, 8, 1)

    def forward(self, x):
        s = F.adaptive_avg_pool2d(x, 1)
        s = F.hardsigmoid(self.fc2(F.relu(self.fc1(s))))
        y = x * s
        z = y.permute(0, 2, 3, 1).reshape(1, -1, 8)
        return F.softmax(z, dim=-1), y + s


class TwoInputs(nn.Module):
    spec = """
input a: [4, 6, 6]
input b: [2, 6, 6]
bn_cat = BatchNorm2d(6)
conv = Conv2d(6, 5, 3, padding='same')
bn_relu = BatchNorm2d(5, eps=1e-3)
pool = MaxPool2d(2)
bn_pool = BatchNorm2d(5)
forward:
    x = bn_cat(cat([a, b], dim=1))
    x = bn_relu(relu(conv(x)))
    return bn_pool(pool(x)), flatten(b)
"""
    inputs = [(4, 6, 6), (2, 6, 6)]

    def __init__(self):
        super().__init__()
        self.bn_cat = nn.BatchNorm2d(6)
        self.conv = nn.Conv2d(6, 5, 3, padding="same")
        self.bn_relu = nn.BatchNorm2d(5, eps=1e-3)
        self.pool = nn.MaxPool2d(2)
        self.bn_pool = nn.BatchNorm2d(5)

    def forward(self, a, b):
        x = self.bn_cat(torch.cat([a, b], dim=1))
        x = self.bn_relu(F.relu(self.conv(x)))
        return self.bn_pool(self.pool(x)), torch.flatten(b)


class Padding(nn.Module):
    spec = """
input x: [3, 9, 7]
same = Conv2d(3, 4, (4, 3), padding='same', dilation=(1, 2))
pad = ZeroPad2d((2, 0, 1, 3))
conv = Conv2d(4, 4, 3, stride=2, groups=4)
bn = BatchNorm2d(4, eps=1e-3)
drop = Dropout(0.3)
forward:
    y = drop(relu(bn(conv(pad(same(x))))))
    return conv(F.pad(y, (1, 2, 0, 1))), y
"""
    inputs = [(3, 9, 7)]

    def __init__(self):
        super().__init__()
        self.same = nn.Conv2d(3, 4, (4, 3), padding="same", dilation=(1, 2))
        self.pad = nn.ZeroPad2d((2, 0, 1, 3))
        self.conv = nn.Conv2d(4, 4, 3, stride=2, groups=4)
        self.bn = nn.BatchNorm2d(4, eps=1e-3)
        self.drop = nn.Dropout(0.3)

    def forward(self, x):
        y = self.drop(F.relu(self.bn(self.conv(self.pad(self.same(x))))))
        return self.conv(F.pad(y, (1, 2, 0, 1))), y


class LinearBn(nn.Module):
    spec = """
input x: [5, 7]
fc = Linear(7, 3)
bn = BatchNorm1d(5)
fc2 = Linear(15, 4, bias=False)
bn2 = BatchNorm1d(4)
forward:
    y = bn(fc(x))
    return tanh(bn2(fc2(flatten(y, 1))))
"""
    inputs = [(5, 7)]

    def __init__(self):
        super().__init__()
        self.fc = nn.Linear(7, 3)
        self.bn = nn.BatchNorm1d(5)
        self.fc2 = nn.Linear(15, 4, bias=False)
        self.bn2 = nn.BatchNorm1d(4)

    def forward(self, x):
        y = self.bn(self.fc(x))
        return torch.tanh(self.bn2(self.fc2(torch.flatten(y, 1))))


class PastedMethods(nn.Module):
    inputs = [(4, 6, 5)]

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 8, 3, padding=1)
        self.fc = nn.Linear(8 * 6 * 5, 10)

    def forward(self, x):
        y = self.conv(x)
        b, c, h, w = y.shape
        z = y.permute(0, 3, 2, 1).contiguous()
        z = z.reshape(-1, c).transpose(0, 1)
        z = z.unsqueeze(0).view(y.size(0), c, h, w)
        f = self.fc(y.view(y.shape[0], -1))
        g = z.view(b, c // 2, 2, h * w).permute(0, 2, 1, 3)
        return f.softmax(dim=1), z.mean([2, 3]), z.mean(dim=1, keepdim=True), x.mean(-1), y.flatten(2).transpose(1, 2), g


class PastedIndexing(nn.Module):
    inputs = [(6,)]

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(1, 4, (3, 1))

    def forward(self, x):
        y = self.conv(x[:, None, :, None])
        n, c, _, _ = y.size()
        z = y[0][..., 0]
        w = y[..., -1].flatten(1)
        v = y.squeeze(-1).unsqueeze(1)
        return F.relu(z), w.view(n, c, -1), torch.sigmoid(v.squeeze())


class PastedModuleList(nn.Module):
    inputs = [(3, 6, 6)]
    spec_modules = """
layers.0 = Conv2d(3, 4, 3, padding=1)
layers.1 = Conv2d(4, 4, 1)
bn = BatchNorm2d(4)
head.0 = Linear(4, 2)
drop = Dropout(0.2)
"""

    def __init__(self):
        super().__init__()
        self.layers = nn.ModuleList([nn.Conv2d(3, 4, 3, padding=1), nn.Conv2d(4, 4, 1)])
        self.bn = nn.BatchNorm2d(4)
        self.head = nn.Sequential(nn.Linear(4, 2))
        self.drop = nn.Dropout(0.2)

    def forward(self, x):
        x = self.layers[0](x)
        y = self.bn(self.layers[1](F.relu(x)))
        feat = y.mean([2, 3])
        logits = self.drop(self.head[0](feat))
        return logits, feat, y


class PastedSlices(nn.Module):
    inputs = [(8, 6, 6)]

    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(4, 4, 3, padding=1)

    def forward(self, x):
        a, b = x.chunk(2, dim=1)
        y = self.conv(a) * torch.sigmoid(b)
        p, q, r = torch.split(y, [1, 2, 1], dim=1)
        s = x[:, :4, 1:5:2, -3:]
        t = x[:, 0]
        u = x[..., 2:8:2]
        parts = y.chunk(3, dim=2)
        return p + r, q, s, t, u, parts[-1], x.split(5, dim=1)[1]


class Upsample2d(nn.Module):
    """Every 2-d resampling form: modules and F.interpolate, nearest and bilinear, align_corners,
    sizes and factors (integer, fractional, per axis, below 1), recompute_scale_factor."""
    inputs = [(3, 5, 7)]

    def __init__(self):
        super().__init__()
        self.near = nn.Upsample(scale_factor=2)
        self.bil = nn.Upsample(size=(8, 11), mode='bilinear')
        self.corners = nn.UpsamplingBilinear2d(scale_factor=(1.5, 2.5))
        self.nn2d = nn.UpsamplingNearest2d(size=(6, 13))
        self.conv = nn.Conv2d(3, 3, 3, padding=1)

    def forward(self, x):
        a = self.near(x)
        b = self.bil(self.conv(x))
        c = self.corners(x)
        d = F.interpolate(x, scale_factor=1.7, mode='nearest')
        e = F.interpolate(x, size=(4, 3), mode='bilinear', align_corners=False)
        f = F.interpolate(x, scale_factor=(0.6, 1.3), mode='bilinear', recompute_scale_factor=True)
        g = F.interpolate(x, size=9)
        h = F.interpolate(x, scale_factor=3, mode='bilinear', align_corners=True)
        return a, b, c, self.nn2d(x), d, e, f, g, h


class Upsample1d(nn.Module):
    """1-d resampling: nearest and linear (align_corners both ways), by factor and by size."""
    inputs = [(4, 9)]

    def __init__(self):
        super().__init__()
        self.up = nn.Upsample(scale_factor=3, mode='linear')
        self.conv = nn.Conv1d(4, 4, 3, padding=1)

    def forward(self, x):
        a = self.up(x)
        b = F.interpolate(self.conv(x), size=14, mode='linear', align_corners=True)
        c = F.interpolate(x, scale_factor=2.5, mode='nearest')
        d = F.interpolate(x, size=4, mode='linear')
        return a, b, c, d


class Norms(nn.Module):
    """LayerNorm over the last axis and over two, without bias, and F.layer_norm without weights;
    GroupNorm on 4-d and 3-d inputs, with and without affine parameters, and F.group_norm."""
    inputs = [(6, 5, 8)]

    def __init__(self):
        super().__init__()
        self.ln = nn.LayerNorm(8)
        self.ln2 = nn.LayerNorm((5, 8), eps=1e-3, bias=False)
        self.gn = nn.GroupNorm(3, 6)
        self.gn1 = nn.GroupNorm(2, 6, affine=False)
        self.conv = nn.Conv1d(6, 4, 3)
        self.gn3 = nn.GroupNorm(4, 4, eps=1e-4)

    def forward(self, x):
        a = self.ln(x)
        b = self.ln2(x)
        c = F.layer_norm(x, [8], eps=1e-6)
        d = self.gn(x)
        e = self.gn1(x)
        f = self.gn3(self.conv(x.flatten(2)))
        g = F.group_norm(x, 2)
        return a, b, c, d, e, f, g


class Attention(nn.Module):
    """A transformer encoder block written out by hand: LayerNorm, one Linear for q, k and v,
    heads by view and transpose, q @ k^T times a constant, softmax over the last axis, @ v
    (torch.matmul), the heads merged, a projection, residual adds, a GELU MLP; then torch.bmm and
    constants divided, subtracted and subtracted from."""
    inputs = [(8, 16)]

    def __init__(self):
        super().__init__()
        self.ln1 = nn.LayerNorm(16)
        self.qkv = nn.Linear(16, 48)
        self.proj = nn.Linear(16, 16)
        self.ln2 = nn.LayerNorm(16)
        self.fc1 = nn.Linear(16, 32)
        self.fc2 = nn.Linear(32, 16)

    def forward(self, x):
        q, k, v = self.qkv(self.ln1(x)).chunk(3, dim=-1)
        q = q.view(1, 8, 2, 8).transpose(1, 2)
        k = k.view(1, 8, 2, 8).transpose(1, 2)
        v = v.view(1, 8, 2, 8).transpose(1, 2)
        a = (q @ k.transpose(-2, -1)) * 0.35355339
        a = a.softmax(dim=-1)
        y = torch.matmul(a, v).transpose(1, 2).reshape(1, 8, 16)
        x = x + self.proj(y)
        h = x + self.fc2(F.gelu(self.fc1(self.ln2(x))))
        b = torch.bmm(h, h.transpose(1, 2)) / 4.0 - 1.0
        return h, 2.0 - b


class GruKeywordSpotter(nn.Module):
    """A GRU keyword spotter as a user writes it: MFCC frames batch-first, the last step's
    output classified, the final state returned too."""
    inputs = [(12, 10)]

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(10, 16, batch_first=True)
        self.fc = nn.Linear(16, 4)

    def forward(self, x):
        out, h = self.gru(x)
        logits = self.fc(out[:, -1])
        return logits, h


class LstmStack(nn.Module):
    """Two LSTM layers on a time-major sequence (the input permuted), dropout between them (a
    no-op in eval mode); the sequence, h_n and a regression head on the last layer's h_n."""
    inputs = [(9, 6)]

    def __init__(self):
        super().__init__()
        self.lstm = nn.LSTM(6, 8, num_layers=2, dropout=0.1)
        self.head = nn.Linear(8, 1)

    def forward(self, x):
        seq = x.permute(1, 0, 2)
        y, (h, c) = self.lstm(seq)
        return y, h, self.head(h[-1])


class Bidirectional(nn.Module):
    """Bidirectional recurrent layers: a 2-layer GRU without biases and a 1-layer LSTM, both
    batch-first (the second layer reads both directions of the first)."""
    inputs = [(7, 5)]

    def __init__(self):
        super().__init__()
        self.gru = nn.GRU(5, 6, num_layers=2, bias=False, batch_first=True, bidirectional=True)
        self.lstm = nn.LSTM(5, 4, batch_first=True, bidirectional=True)

    def forward(self, x):
        y, h = self.gru(x)
        z, _ = self.lstm(x)
        return y, h, z


def body(function):
    """The lines of a function's body as written, indented (the `def` line dropped)."""
    return textwrap.dedent(inspect.getsource(function)).splitlines()[1:]


def pasted(cls):
    """The spec of a case: its inputs, then its module declarations and its forward pasted."""
    names = list(inspect.signature(cls.forward).parameters)[1:]
    inputs = [f"input {n}: {list(s)}" for n, s in zip(names, cls.inputs)]
    modules = getattr(cls, "spec_modules", None)
    if modules is None:
        modules = textwrap.dedent("\n".join(l for l in body(cls.__init__) if "super()" not in l))
    return "\n".join(inputs) + "\n" + modules.strip() + "\nforward:\n" + "\n".join(body(cls.forward)) + "\n"


def output_names(cls):
    """Per output, the plain name `forward` returns it as, or None."""
    tree = ast.parse(textwrap.dedent(inspect.getsource(cls.forward)))
    ret = [n for n in ast.walk(tree) if isinstance(n, ast.Return)][-1].value
    items = ret.elts if isinstance(ret, ast.Tuple) else [ret]
    return [i.id if isinstance(i, ast.Name) else None for i in items]


CASES = {
    "grouped_dilated_conv_bn_prelu": GroupedDilated,
    "conv1d_bn1d_silu": Conv1dBn,
    "activations": Activations,
    "pools": Pools,
    "squeeze_excite_permute_softmax": SqueezeExcite,
    "two_inputs_unfoldable_batchnorms": TwoInputs,
    "padding_forms_dropout": Padding,
    "linear_bn1d_3d_and_2d": LinearBn,
    "pasted_tensor_methods": PastedMethods,
    "pasted_indexing": PastedIndexing,
    "pasted_module_list_output_names": PastedModuleList,
    "pasted_slices_chunk_split": PastedSlices,
    "pools_1d": Pools1d,
    "adaptive_max_pool2d": AdaptiveMax2d,
    "sensor_cnn_1d": SensorCnn1d,
    "conv_transpose_2d_bn_relu": ConvTranspose2dCase,
    "conv_transpose_1d_bn": ConvTranspose1dCase,
    "upsample_2d": Upsample2d,
    "upsample_1d": Upsample1d,
    "layer_norm_group_norm": Norms,
    "attention_block": Attention,
    "gru_keyword_spotter": GruKeywordSpotter,
    "lstm_stack_time_major": LstmStack,
    "bidirectional_gru_lstm": Bidirectional,
}


def main():
    out = {}
    for name, cls in CASES.items():
        m = randomize(cls())
        scale = getattr(cls, "scale", 1.0)
        xs = [torch.randn(1, *s) * scale for s in cls.inputs]
        with torch.no_grad():
            ys = m(*xs)
        ys = ys if isinstance(ys, tuple) else (ys,)
        sd = {k: {"shape": list(v.shape), "data": v.float().flatten().tolist()}
              for k, v in m.state_dict().items()}
        out[name] = {
            "spec": cls.spec.lstrip() if hasattr(cls, "spec") else pasted(cls),
            "state_dict": sd,
            "inputs": [{"shape": list(x.shape), "data": x.flatten().tolist()} for x in xs],
            "outputs": [{"shape": list(y.shape), "data": y.flatten().tolist()} for y in ys],
            "output_names": output_names(cls),
        }
    with open("cases.json", "w") as f:
        json.dump(out, f)


if __name__ == "__main__":
    main()
