/// A lookup table of `numEmbeddings` vectors, like `torch.nn.Embedding`; input int64 indices.
/// With `paddingIdx`, that row starts at zero and gets no gradient (PyTorch's padding token).
public final class Embedding: Module {
    @Parameter public var weight: Tensor
    public let numEmbeddings: Int, embeddingDim: Int
    /// The padding row (non-negative; a negative `paddingIdx` counts from the end, as in PyTorch).
    public let paddingIdx: Int?

    public init(numEmbeddings: Int, embeddingDim: Int, paddingIdx: Int? = nil, generator: Generator = .default) {
        requireLayer("Embedding", ("numEmbeddings", numEmbeddings, 1), ("embeddingDim", embeddingDim, 1))
        if let p = paddingIdx {
            require(p >= -numEmbeddings && p < numEmbeddings, "Embedding: paddingIdx \(p) must be within the \(numEmbeddings) embeddings")
        }
        self.numEmbeddings = numEmbeddings
        self.embeddingDim = embeddingDim
        self.paddingIdx = paddingIdx.map { $0 < 0 ? $0 + numEmbeddings : $0 }
        var w = Tensor.randn([numEmbeddings, embeddingDim], generator: generator)
        if let p = self.paddingIdx {
            var values = w.scalars
            for i in (p * embeddingDim)..<((p + 1) * embeddingDim) { values[i] = 0 }
            w = Tensor(values, shape: w.shape)
        }
        _weight = Parameter(wrappedValue: w)
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        require(x.dtype == .int64, "Embedding expects int64 indices, got \(x.dtype) (convert with .to(.int64))")
        return Tensor.embedding(x, weight, paddingIdx: paddingIdx)
    }

    public override var extraDescription: String {
        "\(numEmbeddings), \(embeddingDim)\(paddingIdx.map { ", padding_idx=\($0)" } ?? "")"
    }
}
