/// Einstein summation over one or two operands, lowered to permute, sum and one batched matrix
/// product, so its gradient is theirs.
extension Tensor {
    /// `torch.einsum`: `"bij,bjk->bik"`, `"bhqd,bhkd->bhqk"`, `"i,j->ij"`, `"ij->ji"`, `"ii->"`
    /// is not supported (no repeated index within one operand), nor `...`. Without `->` the
    /// output is the indices that appear once, in alphabetical order, as in PyTorch.
    public static func einsum(_ equation: String, _ operands: [Tensor]) -> Tensor {
        let spec = equation.filter { !$0.isWhitespace }
        let sides = spec.components(separatedBy: "->")
        require(sides.count <= 2, "einsum: '\(equation)' has more than one '->'")
        let inputs = sides[0].split(separator: ",", omittingEmptySubsequences: false).map { Array($0) }
        require(inputs.count == operands.count && (1...2).contains(inputs.count),
                "einsum: '\(equation)' names \(inputs.count) operands, got \(operands.count) (one or two are supported)")
        for (letters, t) in zip(inputs, operands) {
            require(letters.allSatisfy(\.isLetter), "einsum: '\(equation)': only letters are supported as indices (no '...')")
            require(letters.count == t.rank, "einsum: '\(String(letters))' has \(letters.count) indices for an operand of shape \(t.shape)")
            require(Set(letters).count == letters.count, "einsum: '\(String(letters))' repeats an index within one operand, which is not supported")
        }
        let all = inputs.flatMap { $0 }
        let output: [Character] = sides.count == 2 ? Array(sides[1])
            : Set(all).filter { c in all.filter { $0 == c }.count == 1 }.sorted()
        require(Set(output).count == output.count && output.allSatisfy { all.contains($0) },
                "einsum: output '\(String(output))' must name distinct indices of the operands")
        var sizes: [Character: Int] = [:]
        for (letters, t) in zip(inputs, operands) {
            for (c, n) in zip(letters, t.shape) {
                if let m = sizes[c], m != n, m != 1, n != 1 {
                    stop("einsum: index '\(c)' has size \(m) in one place and \(n) in another (equation '\(equation)')")
                }
                sizes[c] = Swift.max(sizes[c] ?? 1, n)
            }
        }
        // Indices an operand alone has and the output lacks are summed out first.
        func reduceAlone(_ t: Tensor, _ letters: [Character], other: [Character]) -> (Tensor, [Character]) {
            let gone = letters.indices.filter { !output.contains(letters[$0]) && !other.contains(letters[$0]) }
            return gone.isEmpty ? (t, letters) : (t.sum(dims: gone), letters.enumerated().filter { !gone.contains($0.offset) }.map(\.element))
        }
        if operands.count == 1 {
            let (t, letters) = reduceAlone(operands[0], inputs[0], other: [])
            return t.permute(output.map { letters.firstIndex(of: $0)! })
        }
        let (a, la) = reduceAlone(operands[0], inputs[0], other: inputs[1])
        let (b, lb) = reduceAlone(operands[1], inputs[1], other: inputs[0])
        let batch = output.filter { la.contains($0) && lb.contains($0) }
        let left = output.filter { la.contains($0) && !lb.contains($0) }
        let right = output.filter { lb.contains($0) && !la.contains($0) }
        let contracted = la.filter { lb.contains($0) && !output.contains($0) }
        let size = { (cs: [Character]) in cs.map { sizes[$0]! }.reduce(1, *) }
        func arrange(_ t: Tensor, _ letters: [Character], _ order: [Character]) -> Tensor {
            let p = t.permute(order.map { letters.firstIndex(of: $0)! })
            let wanted = order.map { sizes[$0]! }
            return p.shape == wanted ? p : p.expand(wanted)  // size-1 indices broadcast
        }
        let am = arrange(a, la, batch + left + contracted).reshape([size(batch), size(left), size(contracted)])
        let bm = arrange(b, lb, batch + contracted + right).reshape([size(batch), size(contracted), size(right)])
        let product = am.matmul(bm).reshape((batch + left + right).map { sizes[$0]! })
        let produced = batch + left + right
        return product.permute(output.map { produced.firstIndex(of: $0)! })
    }

    /// `einsum` with the operands listed after the equation.
    public static func einsum(_ equation: String, _ operands: Tensor...) -> Tensor { einsum(equation, operands) }
}
