import Synchronization

/// A seeded source of random numbers (xoshiro256**), reproducible on every platform.
///
/// Every random function takes an optional generator; without one it draws from
/// `Generator.default`, which `manualSeed(_:)` resets.
public final class Generator: @unchecked Sendable {
    private let state: Mutex<(UInt64, UInt64, UInt64, UInt64)>
    public private(set) var initialSeed: UInt64
    /// `rand` and `randn` give zeros without drawing (`placeholder`).
    let drawsNothing: Bool

    public init(seed: UInt64 = 0) {
        initialSeed = seed
        state = Mutex(Generator.expand(seed))
        drawsNothing = false
    }

    private init(drawingNothing: ()) {
        (initialSeed, drawsNothing) = (0, true)
        state = Mutex(Generator.expand(0))
    }

    /// For weights about to be overwritten (a checkpoint's, loaded next): `rand` and `randn` give
    /// zeros without drawing, so building a 124M-parameter model to load costs no random numbers
    /// (the default generator is left as it was).
    static let placeholder = Generator(drawingNothing: ())

    /// The process-wide generator used when no generator is passed. Safe from any thread (its
    /// state is behind a lock), but threads drawing from it interleave: code that must be
    /// reproducible under threads (ranks as threads, a DataLoader's workers) passes its own.
    public static let `default` = Generator(seed: 0)

    /// Restarts the sequence from `seed`.
    public func manualSeed(_ seed: UInt64) {
        initialSeed = seed
        state.withLock { $0 = Generator.expand(seed) }
    }

    /// The full internal state, for checkpoints.
    public var stateWords: [UInt64] {
        get { state.withLock { [$0.0, $0.1, $0.2, $0.3] } }
        set {
            require(newValue.count == 4, "a generator state has 4 words, got \(newValue.count)")
            state.withLock { $0 = (newValue[0], newValue[1], newValue[2], newValue[3]) }
        }
    }

    // splitmix64 spreads one seed over the four state words, as the xoshiro authors advise.
    private static func expand(_ seed: UInt64) -> (UInt64, UInt64, UInt64, UInt64) {
        var z = seed
        func next() -> UInt64 {
            z &+= 0x9E37_79B9_7F4A_7C15
            var x = z
            x = (x ^ (x >> 30)) &* 0xBF58_476D_1CE4_E5B9
            x = (x ^ (x >> 27)) &* 0x94D0_49BB_1331_11EB
            return x ^ (x >> 31)
        }
        return (next(), next(), next(), next())
    }

    /// Fills `count` values by calling `body` with a next-UInt64 function, under one lock.
    func withStream<R>(_ body: (() -> UInt64) -> R) -> R {
        state.withLock { s in
            body {
                let result = ((s.1 &* 5) << 7 | (s.1 &* 5) >> 57) &* 9
                let t = s.1 << 17
                s.2 ^= s.0; s.3 ^= s.1; s.1 ^= s.2; s.0 ^= s.3
                s.2 ^= t
                s.3 = (s.3 << 45) | (s.3 >> 19)
                return result
            }
        }
    }

    /// Uniform doubles in [0, 1).
    public func uniform(_ count: Int) -> [Double] {
        withStream { next in (0..<count).map { _ in Double(next() >> 11) * 0x1p-53 } }
    }

    /// Standard normal doubles (Box-Muller).
    public func normal(_ count: Int) -> [Double] {
        withStream { next in
            var out = [Double]()
            out.reserveCapacity(count + 1)
            while out.count < count {
                // 1 - u keeps the logarithm's argument in (0, 1].
                let u1 = 1 - Double(next() >> 11) * 0x1p-53
                let u2 = Double(next() >> 11) * 0x1p-53
                let r = (-2 * _log(u1)).squareRoot()
                out.append(r * _cos(2 * .pi * u2))
                out.append(r * _sin(2 * .pi * u2))
            }
            return Array(out.prefix(count))
        }
    }

    /// Uniform integers in `low..<high`, without modulo bias.
    public func integers(_ count: Int, low: Int, high: Int) -> [Int] {
        require(high > low, "randint needs high > low, got low \(low), high \(high)")
        let span = UInt64(high - low)
        return withStream { next in
            (0..<count).map { _ in
                let limit = UInt64.max - UInt64.max % span
                var x = next()
                while x >= limit { x = next() }
                return low + Int(x % span)
            }
        }
    }

    /// A random permutation of `0..<n` (Fisher-Yates).
    public func permutation(_ n: Int) -> [Int] { permutation(n, as: Int.self) }

    /// The same permutation as `permutation(n)` (the same draws, the same swaps), in a narrower
    /// integer type when `n` fits it.
    public func permutation<T: FixedWidthInteger>(_ n: Int, as type: T.Type) -> [T] {
        var p = (0..<n).map { T(truncatingIfNeeded: $0) }
        guard n > 1 else { return p }
        // Each draw used as it is made: no second array of n draws (a 40M-window corpus
        // shuffled per epoch would hold 320 MB more).
        withStream { next in
            p.withUnsafeMutableBufferPointer { q in
                for i in stride(from: n - 1, to: 0, by: -1) {
                    q.swapAt(i, Int(next() % UInt64(i + 1)))
                }
            }
        }
        return p
    }
}

/// Reseeds the default generator, like `torch.manual_seed`.
public func manualSeed(_ seed: UInt64) {
    Generator.default.manualSeed(seed)
}

