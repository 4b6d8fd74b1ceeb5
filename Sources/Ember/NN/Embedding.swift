/// A lookup table of `numEmbeddings` vectors, like `torch.nn.Embedding`; input int64 indices.
public final class Embedding: Module {
    @Parameter public var weight: Tensor
    public let numEmbeddings: Int, embeddingDim: Int

    public init(numEmbeddings: Int, embeddingDim: Int, generator: Generator = .default) {
        requireLayer("Embedding", ("numEmbeddings", numEmbeddings, 1), ("embeddingDim", embeddingDim, 1))
        self.numEmbeddings = numEmbeddings
        self.embeddingDim = embeddingDim
        _weight = Parameter(wrappedValue: Tensor.randn([numEmbeddings, embeddingDim], generator: generator))
        super.init()
    }

    public override func forward(_ x: Tensor) -> Tensor {
        require(x.dtype == .int64, "Embedding expects int64 indices, got \(x.dtype) (convert with .to(.int64))")
        return weight.indexSelect(dim: 0, index: x.flatten()).reshape(x.shape + [embeddingDim])
    }
}
