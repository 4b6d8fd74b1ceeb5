/// A shape error a user can cause: the message names the shapes involved.
public struct ShapeError: Error, CustomStringConvertible, Equatable {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// Shape arithmetic shared by ops and by code that validates shapes ahead of time.
public enum Shapes {
    /// NumPy broadcasting: align trailing dimensions; each pair must match or one must be 1.
    public static func broadcast(_ a: [Int], _ b: [Int]) throws -> [Int] {
        if a == b { return a }
        let n = max(a.count, b.count)
        var out = [Int](repeating: 1, count: n)
        for i in 0..<n {
            let x = i < n - a.count ? 1 : a[i - (n - a.count)]
            let y = i < n - b.count ? 1 : b[i - (n - b.count)]
            guard x == y || x == 1 || y == 1 else {
                throw ShapeError("shapes \(a) and \(b) cannot be broadcast together (dimension \(i - n): \(x) vs \(y))")
            }
            out[i] = x == 1 ? y : x
        }
        return out
    }

    /// Output shape of `a.matmul(b)` with PyTorch's rules for vectors and batches.
    public static func matmul(_ a: [Int], _ b: [Int]) throws -> [Int] {
        guard !a.isEmpty, !b.isEmpty else {
            throw ShapeError("matmul needs tensors of at least one dimension, got shapes \(a) and \(b)")
        }
        let a2 = a.count == 1 ? [1] + a : a
        let b2 = b.count == 1 ? b + [1] : b
        guard a2[a2.count - 1] == b2[b2.count - 2] else {
            throw ShapeError("matmul shapes \(a) and \(b) do not match: \(a2[a2.count - 1]) columns vs \(b2[b2.count - 2]) rows")
        }
        let batch = try broadcast(Array(a2.dropLast(2)), Array(b2.dropLast(2)))
        var out = batch
        if a.count > 1 { out.append(a2[a2.count - 2]) }
        if b.count > 1 { out.append(b2[b2.count - 1]) }
        return out
    }

    /// Resolves one `-1` in `shape` so it holds `count` elements.
    public static func infer(_ shape: [Int], count: Int, from original: [Int]) throws -> [Int] {
        let unknown = shape.indices.filter { shape[$0] == -1 }
        guard unknown.count <= 1, shape.allSatisfy({ $0 >= -1 }) else {
            throw ShapeError("invalid shape \(shape) for a tensor of shape \(original)")
        }
        var out = shape
        let known = shape.filter { $0 != -1 }.reduce(1, *)
        if let u = unknown.first {
            guard known > 0, count % known == 0 else {
                throw ShapeError("shape \(shape) is invalid for a tensor of shape \(original) (\(count) elements)")
            }
            out[u] = count / known
        }
        guard out.reduce(1, *) == count else {
            throw ShapeError("cannot reshape a tensor of shape \(original) (\(count) elements) into \(shape)")
        }
        return out
    }

    /// Row-major strides of a contiguous tensor.
    public static func strides(_ shape: [Int]) -> [Int] {
        var s = [Int](repeating: 1, count: shape.count)
        var acc = 1
        for i in stride(from: shape.count - 1, through: 0, by: -1) {
            s[i] = acc
            acc *= shape[i]
        }
        return s
    }

    /// Splits `shape` around `dim` into (product before, size at, product after).
    static func split(_ shape: [Int], at dim: Int) -> (outer: Int, size: Int, inner: Int) {
        (shape[..<dim].reduce(1, *), shape[dim], shape[(dim + 1)...].reduce(1, *))
    }
}
