"""Writes Tests/EmberTests/Fixtures/nn.json: PyTorch's values for Ember's layers, losses,
optimizers and LR schedules. Run: python3 scripts/generate_nn_fixtures.py

- layers: state dict, input, output, and gradients of sum(output * w) for the input and every
  parameter, in train or eval mode, plus buffers after the forward pass.
- losses: input, target, output and input gradient, per reduction.
- optimizers: 25 steps on a small model from fixed weights: the loss at each step and the final
  weights.
- schedules: learning rates over 30 steps.
"""
import json
import os

import torch
import torch.nn as nn
import torch.nn.functional as F

torch.manual_seed(0)
torch.set_default_dtype(torch.float64)


def flat(t):
    return t.detach().flatten().tolist()


def tensor_entry(t):
    return {"shape": list(t.shape), "values": flat(t.double()) if t.is_floating_point() else t.flatten().tolist(),
            "dtype": "int64" if t.dtype == torch.int64 else "float64"}


layers = []


def layer(name, module, input_shape, train=True, index_input=None, prepare=None):
    with torch.no_grad():
        for p in module.parameters():
            p.copy_(torch.randn_like(p) * 0.5)
        if prepare:
            prepare(module)
    state = {k: tensor_entry(v) for k, v in module.state_dict().items()}
    module.train(train)
    if index_input is not None:
        x = index_input
    else:
        x = torch.randn(input_shape, requires_grad=True)
    out = module(x)
    w = torch.randn(out.shape)
    (out * w).sum().backward()
    layers.append({
        "name": name, "train": train, "state": state, "input": tensor_entry(x.detach()),
        "output": tensor_entry(out), "weight": flat(w),
        "inputGrad": flat(x.grad) if x.is_floating_point() else None,
        "paramGrads": {k: flat(p.grad) for k, p in module.named_parameters()},
        "buffersAfter": {k: tensor_entry(v) for k, v in module.named_buffers()},
    })


def running_stats(m):
    m.running_mean.copy_(torch.randn_like(m.running_mean))
    m.running_var.copy_(torch.rand_like(m.running_var) + 0.5)


layer("linear", nn.Linear(4, 3), [2, 4])
layer("linearNoBias", nn.Linear(4, 3, bias=False), [2, 4])
layer("linearBatched", nn.Linear(4, 3), [2, 3, 4])
layer("conv2d", nn.Conv2d(2, 3, 3, stride=1, padding=1), [2, 2, 5, 5])
layer("conv2dStrideDilation", nn.Conv2d(2, 3, 3, stride=2, padding=0, dilation=2), [1, 2, 7, 7])
layer("conv2dGroups", nn.Conv2d(4, 6, 3, groups=2), [2, 4, 5, 5])
layer("conv2dSame", nn.Conv2d(2, 2, 4, padding="same"), [1, 2, 5, 6])
layer("conv2dRect", nn.Conv2d(1, 2, (2, 3), stride=(1, 2), padding=(1, 0)), [1, 1, 5, 7])
layer("conv1d", nn.Conv1d(2, 3, 3, stride=2, padding=1), [2, 2, 9])
layer("convTranspose2d", nn.ConvTranspose2d(2, 3, 3, stride=2, padding=1, output_padding=1), [1, 2, 4, 4])
layer("convTranspose2dGroups", nn.ConvTranspose2d(4, 6, 3, stride=2, groups=2), [2, 4, 3, 3])
layer("maxPool2d", nn.MaxPool2d(2), [2, 2, 6, 6])
layer("maxPool2dPadded", nn.MaxPool2d(3, stride=2, padding=1), [1, 2, 7, 7])
layer("maxPool2dCeil", nn.MaxPool2d(2, ceil_mode=True), [1, 1, 5, 5])
layer("avgPool2d", nn.AvgPool2d(2), [2, 2, 6, 6])
layer("avgPool2dPadded", nn.AvgPool2d(3, stride=2, padding=1, count_include_pad=False), [1, 2, 7, 7])
layer("adaptiveAvgPool2d", nn.AdaptiveAvgPool2d((3, 2)), [1, 2, 7, 5])
layer("adaptiveAvgPool2dGlobal", nn.AdaptiveAvgPool2d(1), [2, 3, 4, 4])
layer("maxPool1d", nn.MaxPool1d(3, stride=2, padding=1), [2, 3, 11])
layer("maxPool1dCeil", nn.MaxPool1d(2, ceil_mode=True), [1, 2, 9])
layer("maxPool1dDilated", nn.MaxPool1d(2, stride=1, dilation=2), [2, 2, 8])
layer("maxPool1dUnbatched", nn.MaxPool1d(2), [3, 8])
layer("avgPool1d", nn.AvgPool1d(2), [2, 2, 8])
layer("avgPool1dPadded", nn.AvgPool1d(3, stride=2, padding=1, count_include_pad=False), [2, 3, 11])
layer("adaptiveAvgPool1d", nn.AdaptiveAvgPool1d(4), [2, 3, 10])
layer("adaptiveAvgPool1dUnbatched", nn.AdaptiveAvgPool1d(3), [2, 7])
layer("adaptiveMaxPool1d", nn.AdaptiveMaxPool1d(4), [2, 3, 10])
layer("adaptiveMaxPool1dUnbatched", nn.AdaptiveMaxPool1d(3), [2, 7])
layer("batchNorm1dTrain", nn.BatchNorm1d(3), [4, 3])
layer("batchNorm1dSequenceTrain", nn.BatchNorm1d(3, momentum=0.3), [4, 3, 5])
layer("batchNorm1dEval", nn.BatchNorm1d(3), [4, 3], train=False, prepare=running_stats)
layer("batchNorm2dTrain", nn.BatchNorm2d(3), [2, 3, 4, 4], prepare=running_stats)
layer("batchNorm2dEval", nn.BatchNorm2d(3), [2, 3, 4, 4], train=False, prepare=running_stats)
layer("layerNorm", nn.LayerNorm([4]), [2, 3, 4])
layer("layerNorm2d", nn.LayerNorm([3, 4], eps=1e-3), [2, 3, 4])
layer("groupNorm", nn.GroupNorm(2, 4), [2, 4, 3, 3])
layer("embedding", nn.Embedding(10, 3), None, index_input=torch.tensor([[1, 4, 4], [9, 0, 2]]))
layer("prelu", nn.PReLU(3), [2, 3, 4])
layer("preluShared", nn.PReLU(), [2, 5])
layer("flatten", nn.Flatten(), [2, 3, 2, 2])

# Attention and transformer layers, wrapped so one input drives them; masks are fixed
# functions of position that the Swift side rebuilds (tests/NNFixtures.swift).


def causal_blocked(n):
    return torch.triu(torch.ones(n, n, dtype=torch.bool), 1)


def wave(*shape):
    """A deterministic float mask both sides can build: sin of the flat index."""
    return torch.sin(torch.arange(torch.Size(shape).numel(), dtype=torch.float64)).reshape(shape)


class Wrap(nn.Module):
    def __init__(self, name, module, fn):
        super().__init__()
        self.add_module(name, module)
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


padding = torch.tensor([[False, False, False, True, True], [False, False, False, False, False]])
layer("mhaSelf", Wrap("m", nn.MultiheadAttention(8, 2, batch_first=True), lambda m, x: m.m(x, x, x, need_weights=False)[0]), [2, 5, 8])
layer("mhaWeights", Wrap("m", nn.MultiheadAttention(8, 2, batch_first=True),
                         lambda m, x: torch.cat([t.flatten() for t in m.m(x, x, x)])), [2, 5, 8])
layer("mhaHeadWeights", Wrap("m", nn.MultiheadAttention(8, 4, bias=False, batch_first=True),
                             lambda m, x: torch.cat([t.flatten() for t in m.m(x, x, x, average_attn_weights=False)])), [2, 3, 8])
layer("mhaCausal", Wrap("m", nn.MultiheadAttention(8, 2, batch_first=True),
                        lambda m, x: m.m(x, x, x, attn_mask=causal_blocked(5), is_causal=True, need_weights=False)[0]), [2, 5, 8])
layer("mhaKeyPadding", Wrap("m", nn.MultiheadAttention(8, 2),
                            lambda m, x: m.m(x, x, x, key_padding_mask=padding, need_weights=False)[0]), [5, 2, 8])
layer("mhaKeyPaddingCausal", Wrap("m", nn.MultiheadAttention(8, 2, batch_first=True),
                                  lambda m, x: m.m(x, x, x, key_padding_mask=padding, attn_mask=causal_blocked(5), need_weights=False)[0]), [2, 5, 8])
layer("mhaAdditiveMask", Wrap("m", nn.MultiheadAttention(8, 2, batch_first=True),
                              lambda m, x: m.m(x, x, x, attn_mask=wave(5, 5), need_weights=False)[0]), [2, 5, 8])
layer("mha3DMask", Wrap("m", nn.MultiheadAttention(8, 2, batch_first=True),
                        lambda m, x: m.m(x, x, x, attn_mask=wave(4, 5, 5), need_weights=False)[0]), [2, 5, 8])
layer("mhaCross", Wrap("m", nn.MultiheadAttention(8, 2, kdim=6, vdim=5, batch_first=True),
                       lambda m, x: m.m(x[:, :3], x[..., :6], x[..., 3:], need_weights=False)[0]), [2, 5, 8])
layer("mhaUnbatched", Wrap("m", nn.MultiheadAttention(8, 2), lambda m, x: m.m(x, x, x, need_weights=False)[0]), [4, 8])
layer("encoderLayer", Wrap("m", nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True),
                           lambda m, x: m.m(x, src_key_padding_mask=padding)), [2, 5, 8])
layer("encoderLayerNormFirst", Wrap("m", nn.TransformerEncoderLayer(8, 2, dim_feedforward=12, dropout=0.0, activation="gelu",
                                                                        norm_first=True, batch_first=True),
                                    lambda m, x: m.m(x, src_mask=causal_blocked(5), is_causal=True)), [2, 5, 8])
layer("encoderLayerSeqFirst", Wrap("m", nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, bias=False),
                                   lambda m, x: m.m(x)), [5, 2, 8])
layer("encoder", Wrap("m", nn.TransformerEncoder(nn.TransformerEncoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True),
                                                   2, norm=nn.LayerNorm(8), enable_nested_tensor=False),
                      lambda m, x: m.m(x, mask=causal_blocked(4), is_causal=True)), [2, 4, 8])
layer("decoderLayer", Wrap("m", nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, batch_first=True),
                           lambda m, x: m.m(x, x.flip(1) * 0.5, tgt_mask=causal_blocked(5), tgt_is_causal=True,
                                                memory_key_padding_mask=padding)), [2, 5, 8])
layer("decoderLayerNormFirst", Wrap("m", nn.TransformerDecoderLayer(8, 2, dim_feedforward=16, dropout=0.0, activation="gelu",
                                                                        norm_first=True, batch_first=True),
                                    lambda m, x: m.m(x[:, :3], x)), [2, 5, 8])
layer("rmsNorm", nn.RMSNorm([4]), [2, 3, 4])
layer("rmsNormEps", nn.RMSNorm([3, 4], eps=1e-3), [2, 3, 4])
layer("layerNormNoBias", nn.LayerNorm([4], bias=False), [2, 3, 4])
layer("embeddingPadding", nn.Embedding(10, 3, padding_idx=4), None, index_input=torch.tensor([[1, 4, 4], [9, 0, 4]]))
layer("geluTanh", nn.GELU(approximate="tanh"), [3, 4])

# Recurrent layers with learnable initial states (parameters `h0`, `c0` of the wrapper, so their
# gradients are checked too); outputs and final states concatenated. Unequal lengths go through
# PyTorch's packed sequences.


class WrapState(nn.Module):
    def __init__(self, module, h0_shape, c0_shape, fn):
        super().__init__()
        self.m = module
        self.h0 = nn.Parameter(torch.zeros(h0_shape))
        self.c0 = nn.Parameter(torch.zeros(c0_shape)) if c0_shape else None
        self.fn = fn

    def forward(self, x):
        return self.fn(self, x)


def flat_outputs(out, state):
    parts = [out] + (list(state) if isinstance(state, tuple) else [state])
    return torch.cat([t.flatten() for t in parts])


def recurrent(name, module, x_shape, layers_dirs, hidden, batch, cell=None, lengths=None, lstm=False, proj=0):
    h0 = [layers_dirs, batch, proj or hidden]
    c0 = [layers_dirs, batch, hidden] if lstm else None
    def fn(m, x):
        state = (m.h0, m.c0) if lstm else m.h0
        if lengths is None:
            return flat_outputs(*m.m(x, state))
        packed = nn.utils.rnn.pack_padded_sequence(x, torch.tensor(lengths), batch_first=m.m.batch_first, enforce_sorted=False)
        out, st = m.m(packed, state)
        out, _ = nn.utils.rnn.pad_packed_sequence(out, batch_first=m.m.batch_first, total_length=x_shape[1 if m.m.batch_first else 0])
        return flat_outputs(out, st)
    layer(name, WrapState(module, h0, c0, fn), x_shape)


recurrent("rnnTanh", nn.RNN(3, 4, num_layers=2), [5, 2, 3], 2, 4, 2)
recurrent("rnnReluBidirectional", nn.RNN(3, 4, nonlinearity="relu", bidirectional=True, batch_first=True), [2, 5, 3], 2, 4, 2)
recurrent("lstm", nn.LSTM(3, 4), [5, 2, 3], 1, 4, 2, lstm=True)
recurrent("lstmDeepBidirectional", nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), [2, 5, 3], 4, 4, 2, lstm=True)
recurrent("lstmProjection", nn.LSTM(3, 5, proj_size=2, num_layers=2), [4, 2, 3], 2, 5, 2, lstm=True, proj=2)
recurrent("lstmNoBias", nn.LSTM(3, 4, bias=False), [4, 3, 3], 1, 4, 3, lstm=True)
recurrent("gru", nn.GRU(3, 4, num_layers=2, batch_first=True), [2, 5, 3], 2, 4, 2)
recurrent("gruBidirectional", nn.GRU(3, 4, bidirectional=True), [5, 2, 3], 2, 4, 2)
recurrent("lstmLengths", nn.LSTM(3, 4, num_layers=2, bidirectional=True, batch_first=True), [3, 5, 3], 4, 4, 3, lstm=True, lengths=[5, 2, 4])
recurrent("gruLengths", nn.GRU(3, 4, bidirectional=True), [5, 3, 3], 2, 4, 3, lengths=[3, 5, 1])
recurrent("rnnLengths", nn.RNN(3, 4), [4, 2, 3], 1, 4, 2, lengths=[2, 4])
layer("lstmCell", WrapState(nn.LSTMCell(3, 4), [2, 4], [2, 4], lambda m, x: torch.cat([t.flatten() for t in m.m(x, (m.h0, m.c0))])), [2, 3])
layer("gruCell", WrapState(nn.GRUCell(3, 4), [2, 4], None, lambda m, x: m.m(x, m.h0)), [2, 3])
layer("rnnCell", WrapState(nn.RNNCell(3, 4, nonlinearity="relu"), [2, 4], None, lambda m, x: m.m(x, m.h0)), [2, 3])

# Losses: one case per function and option, every reduction.
losses = []


def loss_case(name, fn, x, target, reductions=("mean", "sum", "none"), **kwargs):
    for r in reductions:
        xi = x.clone().requires_grad_(True)
        out = fn(xi, target, reduction=r, **kwargs)
        w = torch.randn(out.shape)
        (out * w).sum().backward()
        losses.append({"name": name, "reduction": r, "input": tensor_entry(x), "target": tensor_entry(target),
                       "output": tensor_entry(out), "weight": flat(w), "inputGrad": flat(xi.grad)})


x = torch.randn(4, 3)
loss_case("mse", F.mse_loss, x, torch.randn(4, 3))
loss_case("l1", F.l1_loss, x, torch.randn(4, 3))
loss_case("smoothL1", F.smooth_l1_loss, x * 2, torch.randn(4, 3), beta=0.5)
loss_case("huber", F.huber_loss, x * 2, torch.randn(4, 3), delta=0.7)
logits = torch.randn(5, 4)
labels = torch.tensor([0, 3, 1, 1, 2])
loss_case("crossEntropy", F.cross_entropy, logits, labels)
class_weight = torch.tensor([0.5, 2.0, 1.0, 1.5])
loss_case("crossEntropyWeighted", F.cross_entropy, logits, labels, weight=class_weight)
loss_case("crossEntropyIgnore", F.cross_entropy, logits, torch.tensor([0, -100, 1, 3, -100]))
loss_case("crossEntropySmoothing", F.cross_entropy, logits, labels, label_smoothing=0.1)
loss_case("crossEntropySmoothingWeighted", F.cross_entropy, logits, labels, label_smoothing=0.2, weight=class_weight)
loss_case("crossEntropySpatial", F.cross_entropy, torch.randn(2, 3, 2, 2), torch.tensor([[[0, 2], [1, 1]], [[2, 0], [0, 1]]]))
loss_case("nll", F.nll_loss, F.log_softmax(logits, 1), labels, weight=class_weight)
probs = torch.rand(4, 3) * 0.9 + 0.05
bin_target = (torch.rand(4, 3) > 0.5).double()
loss_case("bce", F.binary_cross_entropy, probs, bin_target)
loss_case("bceWeighted", F.binary_cross_entropy, probs, bin_target, weight=torch.tensor([0.2, 0.7, 1.3]))
loss_case("bceWithLogits", F.binary_cross_entropy_with_logits, x * 3, bin_target)
loss_case("bceWithLogitsPosWeight", F.binary_cross_entropy_with_logits, x * 3, bin_target, pos_weight=torch.tensor([0.5, 2.0, 3.0]))
log_p = F.log_softmax(torch.randn(3, 4), 1)
q = F.softmax(torch.randn(3, 4), 1)
q[0, 1] = 0.0
loss_case("klDiv", F.kl_div, log_p, q, reductions=("batchmean", "sum", "none", "mean"))
loss_case("klDivLogTarget", F.kl_div, log_p, F.log_softmax(torch.randn(3, 4), 1), reductions=("batchmean", "sum"), log_target=True)

# Optimizers: 25 steps of a small regression model from identical weights.
torch.set_default_dtype(torch.float32)
model_init = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
init_state = {k: v.clone() for k, v in model_init.state_dict().items()}
opt_x = torch.randn(8, 4)
opt_y = torch.randn(8, 2)
optimizers = []


def optimizer_case(name, make, steps=25):
    model = nn.Sequential(nn.Linear(4, 3), nn.Tanh(), nn.Linear(3, 2))
    model.load_state_dict(init_state)
    opt = make(model)
    trajectory = []
    for _ in range(steps):
        opt.zero_grad()
        loss = F.mse_loss(model(opt_x), opt_y)
        loss.backward()
        opt.step()
        trajectory.append(loss.item())
    optimizers.append({"name": name, "losses": trajectory,
                       "final": {k: tensor_entry(v) for k, v in model.state_dict().items()}})


optimizer_case("sgd", lambda m: torch.optim.SGD(m.parameters(), lr=0.1))
optimizer_case("sgdMomentum", lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, dampening=0.1, weight_decay=0.01))
optimizer_case("sgdNesterov", lambda m: torch.optim.SGD(m.parameters(), lr=0.05, momentum=0.9, nesterov=True))
optimizer_case("sgdGroups", lambda m: torch.optim.SGD([{"params": m[0].parameters()}, {"params": m[2].parameters(), "lr": 0.01}], lr=0.1, momentum=0.5))
optimizer_case("adam", lambda m: torch.optim.Adam(m.parameters(), lr=0.01))
optimizer_case("adamAmsgrad", lambda m: torch.optim.Adam(m.parameters(), lr=0.02, betas=(0.8, 0.99), weight_decay=0.05, amsgrad=True))
optimizer_case("adamW", lambda m: torch.optim.AdamW(m.parameters(), lr=0.01, weight_decay=0.1))
optimizer_case("rmsprop", lambda m: torch.optim.RMSprop(m.parameters(), lr=0.01))
optimizer_case("rmspropCentered", lambda m: torch.optim.RMSprop(m.parameters(), lr=0.005, momentum=0.5, centered=True, weight_decay=0.01))
optimizer_case("adagrad", lambda m: torch.optim.Adagrad(m.parameters(), lr=0.1, lr_decay=0.01, weight_decay=0.01, initial_accumulator_value=0.1))

# Schedules: learning rates for 30 steps.
schedules = []


def schedule_case(name, make, steps=30, metrics=None):
    p = torch.zeros(1, requires_grad=True)
    opt = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    sched = make(opt)
    lrs, momenta = [], []
    for i in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        momenta.append(opt.param_groups[0]["momentum"])
        opt.step()
        sched.step(metrics[i]) if metrics else sched.step()
    schedules.append({"name": name, "lrs": lrs, "momenta": momenta})


schedule_case("stepLR", lambda o: torch.optim.lr_scheduler.StepLR(o, step_size=5, gamma=0.5))
schedule_case("multiStepLR", lambda o: torch.optim.lr_scheduler.MultiStepLR(o, milestones=[3, 7, 12], gamma=0.3))
schedule_case("exponentialLR", lambda o: torch.optim.lr_scheduler.ExponentialLR(o, gamma=0.9))
schedule_case("cosineAnnealingLR", lambda o: torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=10, eta_min=0.001))
schedule_case("linearLR", lambda o: torch.optim.lr_scheduler.LinearLR(o, start_factor=0.2, end_factor=1.0, total_iters=6))
schedule_case("oneCycleLR", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=30))
schedule_case("oneCycleLRThreePhaseLinear", lambda o: torch.optim.lr_scheduler.OneCycleLR(o, max_lr=0.5, total_steps=30, three_phase=True, anneal_strategy="linear"))
schedule_case("sequentialLR", lambda o: torch.optim.lr_scheduler.SequentialLR(o, [
    torch.optim.lr_scheduler.LinearLR(o, start_factor=0.1, total_iters=5),
    torch.optim.lr_scheduler.CosineAnnealingLR(o, T_max=20)], milestones=[5]))
plateau_metrics = [1.0, 0.9, 0.95, 0.96, 0.97, 0.8, 0.81, 0.82, 0.83, 0.84, 0.85, 0.7, 0.7, 0.7, 0.7,
                   0.7, 0.7, 0.7, 0.69999, 0.7, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6]
schedule_case("reduceLROnPlateau", lambda o: torch.optim.lr_scheduler.ReduceLROnPlateau(o, patience=2, cooldown=1, factor=0.5), metrics=plateau_metrics)

# A small CNN whose PyTorch state dict Ember must load by key and reproduce.
torch.manual_seed(1)
cnn = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2), nn.Flatten(), nn.Linear(64, 5))
with torch.no_grad():
    cnn[1].running_mean.copy_(torch.randn(4) * 0.1)
    cnn[1].running_var.copy_(torch.rand(4) + 0.5)
    cnn[1].weight.copy_(torch.rand(4) + 0.5)
    cnn[1].bias.copy_(torch.randn(4) * 0.1)
cnn.eval()
cnn_x = torch.randn(3, 1, 8, 8)
cnn_case = {"state": {k: tensor_entry(v) for k, v in cnn.state_dict().items()}, "input": tensor_entry(cnn_x),
            "output": tensor_entry(cnn(cnn_x)), "keys": list(cnn.state_dict().keys())}

path = os.path.join(os.path.dirname(__file__), "..", "Tests", "EmberTests", "Fixtures", "nn.json")
with open(path, "w") as f:
    json.dump({"generator": "scripts/generate_nn_fixtures.py", "torch": torch.__version__, "layers": layers,
               "losses": losses, "optimizers": optimizers, "optimizerData": {"x": tensor_entry(opt_x), "y": tensor_entry(opt_y),
               "init": {k: tensor_entry(v) for k, v in init_state.items()}},
               "schedules": schedules, "cnn": cnn_case}, f)
print(f"wrote {len(layers)} layers, {len(losses)} losses, {len(optimizers)} optimizers, {len(schedules)} schedules to {os.path.normpath(path)}")

# The same CNN as a safetensors file written by the reference implementation.
from safetensors.torch import save_file  # noqa: E402

save_file({k: v.contiguous() for k, v in cnn.state_dict().items()},
          os.path.join(os.path.dirname(path), "cnn.safetensors"), metadata={"framework": "pytorch"})
