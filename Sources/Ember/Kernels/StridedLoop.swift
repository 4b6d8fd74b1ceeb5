/// Walks an output of some shape row by row while tracking where each of two operands is,
/// given their strides in the output's index space (0 along broadcast dimensions).
///
/// Dimensions that are contiguous for every operand are merged first, so a same-shape op is one
/// row and a bias add over `[64, 128]` is 64 rows of 128 with the bias stride 1.
struct StridedLoop {
    private(set) var outer: [Int] = []
    private(set) var aOuter: [Int] = []
    private(set) var bOuter: [Int] = []
    private(set) var inner = 1
    private(set) var aInner = 0
    private(set) var bInner = 0

    init(shape: [Int], aStrides: [Int], bStrides: [Int]) {
        // Drop size-1 dimensions, then merge neighbours that are contiguous in both operands.
        var dims: [(n: Int, a: Int, b: Int)] = []
        for i in shape.indices where shape[i] != 1 {
            let d = (shape[i], aStrides[i], bStrides[i])
            if let last = dims.last, last.a == d.1 * d.0, last.b == d.2 * d.0 {
                dims[dims.count - 1] = (last.n * d.0, d.1, d.2)
            } else {
                dims.append(d)
            }
        }
        if let last = dims.popLast() {
            inner = last.n; aInner = last.a; bInner = last.b
        }
        outer = dims.map(\.n); aOuter = dims.map(\.a); bOuter = dims.map(\.b)
    }

    /// One row of `count` elements (same-shape and scalar operands).
    init(contiguous count: Int, aStride: Int, bStride: Int) {
        inner = count
        aInner = aStride
        bInner = bStride
    }

    /// Strides of a tensor of `shape` read in an output of `outShape` (broadcast dims get 0).
    static func broadcastStrides(_ shape: [Int], to outShape: [Int]) -> [Int] {
        let s = Shapes.strides(shape)
        let lead = outShape.count - shape.count
        return outShape.indices.map { i in
            i < lead || shape[i - lead] == 1 ? 0 : s[i - lead]
        }
    }

    /// Calls `body(aOffset, bOffset, outOffset)` once per row of `inner` elements.
    @inline(__always)
    func forEachRow(_ body: (Int, Int, Int) -> Void) {
        let rows = outer.reduce(1, *)
        if outer.isEmpty { body(0, 0, 0); return }
        var index = [Int](repeating: 0, count: outer.count)
        var a = 0, b = 0
        for row in 0..<rows {
            body(a, b, row * inner)
            // Odometer increment of the outer index, updating offsets incrementally.
            var d = outer.count - 1
            while d >= 0 {
                index[d] += 1
                a += aOuter[d]; b += bOuter[d]
                if index[d] < outer[d] { break }
                a -= aOuter[d] * outer[d]; b -= bOuter[d] * outer[d]
                index[d] = 0
                d -= 1
            }
        }
    }
}
