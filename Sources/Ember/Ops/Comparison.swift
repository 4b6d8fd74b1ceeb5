/// Comparisons return masks: tensors of 1 and 0 in the operands' (floating-point) dtype, so they
/// multiply straight into other tensors. They carry no gradient.
extension Tensor {
    private func compare(_ op: BinaryOp, _ other: Tensor) -> Tensor {
        noGrad {
            let (_, _, out) = Tensor.binaryKernel(op, self, other)
            return out.dtype == .int64 ? out.to(.float32) : out
        }
    }

    @_disfavoredOverload
    public func eq(_ other: Tensor) -> Tensor { compare(.eq, other) }
    @_disfavoredOverload
    public func ne(_ other: Tensor) -> Tensor { compare(.ne, other) }
    @_disfavoredOverload
    public func lt(_ other: Tensor) -> Tensor { compare(.lt, other) }
    @_disfavoredOverload
    public func le(_ other: Tensor) -> Tensor { compare(.le, other) }
    @_disfavoredOverload
    public func gt(_ other: Tensor) -> Tensor { compare(.gt, other) }
    @_disfavoredOverload
    public func ge(_ other: Tensor) -> Tensor { compare(.ge, other) }

    public func eq(_ value: Double) -> Tensor { eq(scalarLike(value)) }
    public func ne(_ value: Double) -> Tensor { ne(scalarLike(value)) }
    public func lt(_ value: Double) -> Tensor { lt(scalarLike(value)) }
    public func le(_ value: Double) -> Tensor { le(scalarLike(value)) }
    public func gt(_ value: Double) -> Tensor { gt(scalarLike(value)) }
    public func ge(_ value: Double) -> Tensor { ge(scalarLike(value)) }

    // Pointwise operators in the style of Swift's SIMD types.
    public static func .== (a: Tensor, b: Tensor) -> Tensor { a.eq(b) }
    public static func .!= (a: Tensor, b: Tensor) -> Tensor { a.ne(b) }
    public static func .< (a: Tensor, b: Tensor) -> Tensor { a.lt(b) }
    public static func .<= (a: Tensor, b: Tensor) -> Tensor { a.le(b) }
    public static func .> (a: Tensor, b: Tensor) -> Tensor { a.gt(b) }
    public static func .>= (a: Tensor, b: Tensor) -> Tensor { a.ge(b) }

    /// True when every element is within `atol + rtol * |other|` of `other` (shapes must match).
    public func allClose(_ other: Tensor, rtol: Double = 1e-5, atol: Double = 1e-8) -> Bool {
        guard shape == other.shape else { return false }
        let a = doubleScalars, b = other.doubleScalars
        return zip(a, b).allSatisfy { x, y in
            x == y || Swift.abs(x - y) <= atol + rtol * Swift.abs(y)
        }
    }

    /// `cond ? a : b` elementwise with broadcasting; `cond` is a mask (non-zero means true).
    public static func `where`(_ cond: Tensor, _ a: Tensor, _ b: Tensor) -> Tensor {
        let dtype = resultType(a, b)
        let a = a.to(dtype), b = b.to(dtype)
        let shape = check { try Shapes.broadcast(cond.shape, Shapes.broadcast(a.shape, b.shape)) }
        let out = noGrad { Kernels.select(cond.expand(shape), a.expand(shape), b.expand(shape)) }
        return out.recordOp("WhereBackward", [a, b]) { g in
            let zero = g.scalarLike(0)
            return [a.requiresGrad ? Tensor.where(cond, g, zero).sumTo(a.shape) : nil,
                    b.requiresGrad ? Tensor.where(cond, zero, g).sumTo(b.shape) : nil]
        }
    }

    /// `value` where `mask` is non-zero, `self` elsewhere.
    public func maskedFill(_ mask: Tensor, _ value: Double) -> Tensor {
        Tensor.where(mask, scalarLike(value), self)
    }
}
