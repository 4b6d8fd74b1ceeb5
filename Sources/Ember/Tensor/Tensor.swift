/// An n-dimensional array with reverse-mode automatic differentiation.
///
/// Storage is contiguous and row-major. A tensor produced by an op while grad mode is on, from
/// inputs that require gradients, remembers the op in `gradFn`; `backward()` walks those records
/// in reverse and accumulates gradients into the leaves' `grad`.
///
/// ```swift
/// let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], requiresGrad: true)
/// let y = (a * a).sum()
/// y.backward()
/// a.grad!.scalars   // [2, 4, 6, 8, 10, 12]
/// ```
public final class Tensor: @unchecked Sendable {
    /// The buffer this tensor views (shared by `reshape` and `detach`).
    public internal(set) var storage: Storage
    /// Where this tensor's elements start in `storage` (non-zero only for views into a larger
    /// buffer, such as `flatView`).
    public internal(set) var byteOffset: Int
    /// Size of each dimension; `[]` for a scalar.
    public let shape: [Int]
    public let dtype: DType
    /// Number of elements.
    public let count: Int

    /// The op that produced this tensor, when it is part of a recorded graph.
    var gradFn: GradNode?
    var leafRequiresGrad = false
    /// Accumulated gradient: set by `backward()` on leaves, and on non-leaves after `retainGrad()`.
    public var grad: Tensor?
    var retainsGrad = false
    var gradHooks: [(id: Int, hook: (Tensor) -> Tensor?)] = []
    var postAccumulateHooks: [(id: Int, hook: (Tensor) -> Void)] = []
    /// A label used in error messages and printed graphs (optional).
    public var name: String?

    // Scratch space of the backward pass, so it needs no hash tables: the id of the last run that
    // visited this tensor, and the gradient that run has accumulated for it so far.
    var engineMark = 0
    var engineGrad: Tensor?
    /// How many recorded ops of the current backward run consume this tensor (counted only when
    /// the run accumulates into `.grad`; see `offeredOutput`).
    var engineUses = 0
    /// Where backward writes this leaf's gradient (`setGradientDestination`).
    var gradientDestination: GradientOutput?
    /// What must finish before this gradient may be read (`setPendingGradient`).
    weak var pendingGradient: PendingGradient?

    init(storage: Storage, shape: [Int], dtype: DType, byteOffset: Int = 0) {
        require(shape.allSatisfy { $0 >= 0 }, "negative dimension in shape \(shape)")
        self.storage = storage
        self.shape = shape
        self.dtype = dtype
        self.byteOffset = byteOffset
        self.count = shape.reduce(1, *)
        require(byteOffset >= 0 && byteOffset + count * dtype.byteSize <= storage.byteCount,
                     "storage of \(storage.byteCount) bytes is too small for shape \(shape) \(dtype)")
    }

    /// A new tensor with uninitialised contents.
    init(uninitializedShape shape: [Int], dtype: DType) {
        let count = Tensor.elementCount(shape)
        self.storage = Storage(byteCount: count * dtype.byteSize)
        self.byteOffset = 0
        self.shape = shape
        self.dtype = dtype
        self.count = count
    }

    /// The number of elements of `shape`; stops, naming the shape, when a dimension is negative
    /// or the count (in bytes) does not fit in memory's address range.
    static func elementCount(_ shape: [Int]) -> Int {
        var count = 1
        for d in shape {
            require(d >= 0, "negative dimension in shape \(shape)")
            let (product, overflow) = count.multipliedReportingOverflow(by: d)
            require(!overflow && product <= Int.max / 8, "shape \(shape) has too many elements")
            count = product
        }
        return count
    }

    /// Number of dimensions.
    public var rank: Int { shape.count }
    /// PyTorch's name for `rank`.
    public var ndim: Int { shape.count }

    /// Size of one dimension; negative `dim` counts from the end.
    public func size(_ dim: Int) -> Int { shape[normalizeDim(dim)] }

    /// Whether gradients flow to this tensor. Settable on leaves only, as in PyTorch.
    public var requiresGrad: Bool {
        get { leafRequiresGrad || gradFn != nil }
        set {
            require(gradFn == nil || newValue,
                         "requiresGrad can only be changed on leaf tensors; use detach() instead")
            require(!newValue || dtype.isFloatingPoint,
                         "only floating-point tensors can require gradients (this one is \(dtype))")
            if gradFn == nil { leafRequiresGrad = newValue }
        }
    }

    /// Sets `requiresGrad` and returns self, for chaining: `Tensor.randn([3]).requiresGrad_()`.
    @discardableResult
    public func requiresGrad_(_ value: Bool = true) -> Tensor {
        requiresGrad = value
        return self
    }

    /// A leaf is a tensor not produced by a recorded op (user-created, or created under `noGrad`).
    public var isLeaf: Bool { gradFn == nil }

    /// The name of the op that produced this tensor (`"MulBackward"`), or nil for a leaf.
    public var gradFnName: String? { gradFn?.name }

    /// Asks `backward()` to keep this non-leaf tensor's gradient in `grad`.
    public func retainGrad() {
        require(requiresGrad, "retainGrad() on a tensor that does not require grad")
        if gradFn != nil { retainsGrad = true }
    }

    /// A tensor sharing this one's storage, cut off from the graph (`requiresGrad == false`).
    public func detach() -> Tensor {
        Tensor(storage: storage, shape: shape, dtype: dtype, byteOffset: byteOffset)
    }

    /// A tensor of `shape` over this one's elements starting at element `offset`, sharing storage
    /// and outside any graph (how a flat buffer is cut into per-parameter pieces).
    public func flatView(offset: Int, shape: [Int]) -> Tensor {
        Tensor(storage: storage, shape: shape, dtype: dtype, byteOffset: byteOffset + offset * dtype.byteSize)
    }

    /// A tensor over memory Ember did not allocate (64-byte aligned is best), such as a segment
    /// of shared memory; `owner` is kept alive as long as the tensor or any view of it.
    public convenience init(external pointer: UnsafeMutableRawPointer, shape: [Int], dtype: DType, owner: AnyObject) {
        let count = shape.reduce(1, *)
        self.init(storage: Storage(external: pointer, byteCount: count * dtype.byteSize, owner: owner), shape: shape, dtype: dtype)
    }

    /// Makes this tensor a view of `source`'s elements (same shape and dtype), like PyTorch's
    /// `Tensor.set_`: everything holding this tensor (a module, an optimizer) then reads and
    /// writes `source`'s memory. Used to place parameters in one flat buffer.
    public func set_(_ source: Tensor) {
        require(source.shape == shape && source.dtype == dtype,
                     "set_ needs the same shape and dtype (\(shape) \(dtype) against \(source.shape) \(source.dtype))")
        storage = source.storage
        byteOffset = source.byteOffset
    }

    /// The first element's address (valid while the tensor lives).
    public var dataPointer: UnsafeMutableRawPointer { storage.raw + byteOffset }

    /// Cuts this tensor off from the graph in place and makes it a leaf.
    public func detach_() {
        gradFn = nil
        leafRequiresGrad = false
    }

    // MARK: Raw access (kernels only)

    @inline(__always)
    func pointer<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        // Every kernel reads through here: one that would read bfloat16 bits as another type
        // (an op with no bfloat16 case of its own) stops with the reason instead.
        if dtype == .bfloat16 && MemoryLayout<T>.size != 2 { stop(DType.bfloat16Refused("an op")) }
        return (storage.raw + byteOffset).assumingMemoryBound(to: T.self)
    }

    // MARK: Reading values

    /// All elements as Float, row-major.
    public var scalars: [Float] { toArray(Float.self) }
    /// All elements as Double, row-major.
    public var doubleScalars: [Double] { toArray(Double.self) }
    /// All elements as Int (floats are truncated toward zero), row-major.
    public var intScalars: [Int] {
        switch dtype {
        case .int64: return Array(UnsafeBufferPointer(start: pointer(Int64.self), count: count)).map { Int($0) }
        case .float32: return scalars.map { Int($0) }
        case .float64: return doubleScalars.map { Int($0) }
        case .bfloat16: return scalars.map { Int($0) }
        }
    }

    func toArray<T: BinaryFloatingPoint>(_ type: T.Type) -> [T] {
        switch dtype {
        case .float32: return UnsafeBufferPointer(start: pointer(Float.self), count: count).map { T($0) }
        case .float64: return UnsafeBufferPointer(start: pointer(Double.self), count: count).map { T($0) }
        case .int64: return UnsafeBufferPointer(start: pointer(Int64.self), count: count).map { T($0) }
        case .bfloat16: return UnsafeBufferPointer(start: pointer(UInt16.self), count: count).map { T(BFloat16.float(bits: $0)) }
        }
    }

    /// The value of a one-element tensor.
    public func item() -> Float {
        require(count == 1, "item() needs a tensor with one element, got shape \(shape)")
        return scalars[0]
    }

    /// The value of a one-element tensor, as Double.
    public func doubleItem() -> Double {
        require(count == 1, "doubleItem() needs a tensor with one element, got shape \(shape)")
        return doubleScalars[0]
    }

    /// Element `i` (row-major) as Double; for tests and small debugging reads.
    func element(_ i: Int) -> Double {
        switch dtype {
        case .float32: return Double(pointer(Float.self)[i])
        case .float64: return pointer(Double.self)[i]
        case .int64: return Double(pointer(Int64.self)[i])
        case .bfloat16: return Double(BFloat16.float(bits: pointer(UInt16.self)[i]))
        }
    }

    /// Resolves a possibly negative dimension index against this tensor's rank.
    func normalizeDim(_ dim: Int, rank r: Int? = nil) -> Int {
        let r = r ?? rank
        let d = dim < 0 ? dim + r : dim
        require(d >= 0 && d < Swift.max(r, 1), "dimension \(dim) is out of range for a tensor of rank \(rank) (shape \(shape))")
        return d
    }
}

extension Tensor {
    /// The tensor's elements as a typed pointer, for code outside Ember that moves raw data (the
    /// communication layer). `T` must match `dtype`; valid while the tensor is alive.
    public func mutablePointer<T>(_ type: T.Type) -> UnsafeMutablePointer<T> {
        require(MemoryLayout<T>.size == dtype.byteSize, "pointer type \(T.self) does not match dtype \(dtype)")
        return pointer(T.self)
    }
}
