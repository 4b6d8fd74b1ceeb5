// API mistakes a new user makes, each stopping the program. `launch/test` runs every case of a
// release build and checks that it fails with its message (release builds drop the messages of
// `precondition`; Ember's checks keep them). `APIMistakes --list` prints `name<TAB>expected text`.
import Ember

let x = Tensor.randn([2, 3])
let cases: [(name: String, expected: String, run: () -> Void)] = [
    ("cross-entropy-float-targets", "expects int64 class indices", { _ = CrossEntropyLoss()(x, Tensor([0, 1])) }),
    ("cross-entropy-label-out-of-range", "target 5 at position 1 is out of range for 3 classes",
     { _ = CrossEntropyLoss()(x, Tensor(indices: [0, 5])) }),
    ("linear-wrong-features", "Linear(4 → 2) got input of shape [2, 3]", { _ = Linear(inFeatures: 4, outFeatures: 2)(x) }),
    ("embedding-float-indices", "Embedding expects int64 indices, got torch.float32", {
        _ = Embedding(numEmbeddings: 5, embeddingDim: 2)(Tensor([1, 2]))
    }),
    ("embedding-index-out-of-range", "index 7 is out of bounds for dimension of size 5", {
        _ = Embedding(numEmbeddings: 5, embeddingDim: 2)(Tensor(indices: [1, 7]))
    }),
    ("values-do-not-fill-shape", "5 values cannot fill shape [2, 2]", { _ = Tensor([1, 2, 3, 4, 5], shape: [2, 2]) }),
    ("softmax-missing-dim", "dimension 2 is out of range for a tensor of rank 2", { _ = x.softmax(dim: 2) }),
    ("transpose-missing-dim", "dimension 3 is out of range for a tensor of rank 2", { _ = x.transpose(0, 3) }),
    ("conv2d-wrong-channels", "Conv2d(3 → 4) expects input [N, 3, H, W], got [1, 1, 8, 8]", {
        _ = Conv2d(inChannels: 3, outChannels: 4, kernelSize: 3)(Tensor.zeros([1, 1, 8, 8]))
    }),
    ("mse-shapes-differ", "MSELoss: input shape [2, 3] and target shape [3, 2] differ", { _ = MSELoss()(x, Tensor.zeros([3, 2])) }),
    ("reshape-wrong-count", "cannot reshape", { _ = x.reshape([4, 2]) }),
    ("matmul-shapes", "matmul", { _ = x.matmul(Tensor.zeros([2, 2])) }),
    ("item-of-many", "item() needs a tensor with one element", { _ = x.item() }),
    ("bfloat16-arithmetic", "an elementwise op does not compute on bfloat16 tensors", { _ = x.to(.bfloat16) + x.to(.bfloat16) }),
    ("bfloat16-layer", "matmul does not compute on bfloat16 tensors", { _ = Linear(inFeatures: 3, outFeatures: 2).to(.bfloat16)(x.to(.bfloat16)) }),
    ("bfloat16-softmax", "softmax does not compute on bfloat16 tensors", { _ = x.to(.bfloat16).softmax(dim: 1) }),
    ("negative-shape", "negative dimension in shape [2, -1]", { _ = Tensor.zeros([2, -1]) }),
    ("dropout-probability", "Dropout: probability p must be between 0 and 1, got 1.5", { _ = Dropout(p: 1.5) }),
    ("conv2d-stride-zero", "Conv2d: stride must be positive, got 0", { _ = Conv2d(inChannels: 1, outChannels: 1, kernelSize: 3, stride: 0) }),
    ("conv2d-negative-padding", "Conv2d: padding must be non-negative, got -1", {
        _ = Conv2d(inChannels: 1, outChannels: 1, kernelSize: 3, padding: -1)
    }),
    ("conv2d-groups-zero", "Conv2d: groups must be positive, got 0", { _ = Conv2d(inChannels: 2, outChannels: 2, kernelSize: 3, groups: 0) }),
    ("maxpool-kernel-zero", "MaxPool2d: kernelSize must be positive, got 0", { _ = MaxPool2d(kernelSize: 0) }),
    ("functional-conv-stride-zero", "conv2d: stride must be positive, got 0×1", {
        _ = conv2d(Tensor.zeros([1, 1, 5, 5]), weight: Tensor.zeros([1, 1, 3, 3]), stride: (0, 1))
    }),
    ("backward-of-non-scalar", "backward() without a gradient needs a one-element tensor", {
        (x.requiresGrad_() * 2).backward()
    }),
    ("optimizer-missing-hyperparameter", "missing hyperparameter 'dampening'", {
        _ = SGD(paramGroups: [ParamGroup(params: [Tensor([1], requiresGrad: true)], learningRate: 0.1, options: ["momentum": 0.9])])
    }),
    ("optimizer-misspelt-hyperparameter", "SGD has no hyperparameter 'momentm'", {
        _ = SGD(paramGroups: [ParamGroup(params: [Tensor([1], requiresGrad: true)], learningRate: 0.1,
                                         options: SGD.Hyperparameters().values.merging(["momentm": 0.9]) { a, _ in a })])
    }),
    ("attention-heads-do-not-divide", "MultiheadAttention: embedDim 10 must be divisible by numHeads 3", {
        _ = MultiheadAttention(embedDim: 10, numHeads: 3)
    }),
    ("attention-mask-and-causal", "give attnMask or isCausal, not both", {
        _ = Tensor.scaledDotProductAttention(x, x, x, attnMask: .additive(Tensor.zeros([2, 2])), isCausal: true)
    }),
    ("lstm-wrong-input-size", "LSTM(inputSize: 4) got input whose last dimension is 3", {
        _ = LSTM(inputSize: 4, hiddenSize: 8)(Tensor.zeros([5, 2, 3]))
    }),
    ("lstm-bad-lengths", "lengths must give each of the 2 sequences a length in 1...5, got [6, 1]", {
        _ = LSTM(inputSize: 3, hiddenSize: 8)(Tensor.zeros([5, 2, 3]), lengths: [6, 1])
    }),
    ("einsum-repeated-index", "repeats an index within one operand", { _ = Tensor.einsum("ii->", Tensor.zeros([2, 2])) }),
    ("topk-too-large", "topk: k = 5 is out of range for dimension -1 of size 3", { _ = x.topk(5) }),
    ("gelu-unknown-approximation", "GELUApproximation: \"fast\" is not one of \"none\", \"tanh\"", { _ = GELU(approximate: "fast") }),
    ("multinomial-too-many-without-replacement", "cannot draw 2 samples without replacement from row 0", {
        _ = Tensor([1, 0, 0]).multinomial(2)
    }),
]

let arguments = CommandLine.arguments.dropFirst()
if arguments.first == "--list" {
    for c in cases { print("\(c.name)\t\(c.expected)") }
} else if let name = arguments.first, let c = cases.first(where: { $0.name == name }) {
    c.run()
    print("\(name): no error")  // reaching here is the test's failure
} else {
    print("usage: APIMistakes --list | NAME")
}
