/// Fused optimizer updates: one pass over the parameter, its gradient and its state, in place,
/// with PyTorch's arithmetic in PyTorch's order.
extension Kernels {
    struct SGDSettings {
        var lr: Double, momentum: Double, dampening: Double, weightDecay: Double
        var nesterov: Bool, maximize: Bool, firstStep: Bool
    }

    static func sgd(_ p: Tensor, _ g: Tensor, buffer: Tensor?, _ s: SGDSettings) {
        func run<T: FloatElement>(_ type: T.Type) {
            let param = p.pointer(T.self), grad = g.pointer(T.self), buf = buffer?.pointer(T.self)
            let lr = T(s.lr), mu = T(s.momentum), damp = T(1 - s.dampening), wd = T(s.weightDecay)
            let n = p.count
            // The common cases as straight loops (momentum in C, for this CPU's vectors: 10%
            // faster than the SSE2 Swift loop); the general loop below.
            if let buf, !s.firstStep, !s.nesterov, !s.maximize {
                if T.self == Float.self {
                    ember_sgd_momentum_f32(float(param), float(grad), float(buf), n, Float(s.lr), Float(s.momentum), Float(1 - s.dampening), Float(s.weightDecay))
                } else {
                    ember_sgd_momentum_f64(double(param), double(grad), double(buf), n, s.lr, s.momentum, 1 - s.dampening, s.weightDecay)
                }
                return
            }
            if buffer == nil && !s.maximize && s.weightDecay == 0 {
                for i in 0..<n { param[i] -= lr * grad[i] }
                return
            }
            for i in 0..<n {
                var d = s.maximize ? -grad[i] : grad[i]
                if s.weightDecay != 0 { d += wd * param[i] }
                if let buf {
                    buf[i] = s.firstStep ? d : mu * buf[i] + damp * d
                    d = s.nesterov ? d + mu * buf[i] : buf[i]
                }
                param[i] -= lr * d
            }
        }
        p.dtype == .float64 ? run(Double.self) : run(Float.self)
    }

    struct AdamSettings {
        var lr: Double, beta1: Double, beta2: Double, eps: Double, weightDecay: Double
        var decoupled: Bool, amsgrad: Bool, maximize: Bool, step: Double
    }

    static func adam(_ p: Tensor, _ g: Tensor, m: Tensor, v: Tensor, vMax: Tensor?, _ s: AdamSettings) {
        func run<T: FloatElement>(_ type: T.Type) {
            let param = p.pointer(T.self), grad = g.pointer(T.self)
            let mp = m.pointer(T.self), vp = v.pointer(T.self), vmax = vMax?.pointer(T.self)
            let b1 = T(s.beta1), b2 = T(s.beta2), eps = T(s.eps), wd = T(s.weightDecay)
            let bias1 = 1 - Foundation.pow(s.beta1, s.step), bias2 = 1 - Foundation.pow(s.beta2, s.step)
            let stepSize = T(s.lr / bias1), bias2Sqrt = T(bias2.squareRoot())
            let decay = T(1 - s.lr * s.weightDecay)
            if vmax == nil && !s.maximize {
                // Adam, Adam with L2 decay, AdamW: eight elements at a time.
                adamLoop(param, grad, mp, vp, count: p.count, b1: b1, b2: b2, eps: eps, stepSize: stepSize, bias2Sqrt: bias2Sqrt,
                          scale: s.decoupled && s.weightDecay != 0 ? decay : 1, l2: s.decoupled ? 0 : wd)
                return
            }
            for i in 0..<p.count {
                var d = s.maximize ? -grad[i] : grad[i]
                if s.weightDecay != 0 {
                    if s.decoupled { param[i] *= decay } else { d += wd * param[i] }
                }
                mp[i] = b1 * mp[i] + (1 - b1) * d
                vp[i] = b2 * vp[i] + (1 - b2) * d * d
                var second = vp[i]
                if let vmax {
                    vmax[i] = Swift.max(vmax[i], vp[i])
                    second = vmax[i]
                }
                param[i] -= stepSize * mp[i] / (second.squareRoot() / bias2Sqrt + eps)
            }
        }
        p.dtype == .float64 ? run(Double.self) : run(Float.self)
    }

    /// The common Adam update, in C (VectorMath.c): Swift's square root keeps a libm call for
    /// errno, so a Swift loop stayed scalar at 9 cycles an element, 20 times the SGD step; the C
    /// loop is vectorised for the CPU it runs on. Same operations in the same order, same bits.
    @inline(__always)
    private static func adamLoop<T: FloatElement>(_ param: UnsafeMutablePointer<T>, _ grad: UnsafeMutablePointer<T>, _ mp: UnsafeMutablePointer<T>,
                                                  _ vp: UnsafeMutablePointer<T>, count n: Int, b1: T, b2: T, eps: T, stepSize: T,
                                                  bias2Sqrt: T, scale: T, l2: T) {
        if T.self == Float.self {
            // Each element updates alone: a large parameter is shared by the product threads.
            share(n, grain: 1 << 15) { i, end in
                ember_adam_f32(float(param + i), float(grad + i), float(mp + i), float(vp + i), end - i, Float(b1), Float(b2), Float(eps), Float(stepSize),
                               Float(bias2Sqrt), Float(scale), Float(l2))
            }
        } else {
            ember_adam_f64(double(param), double(grad), double(mp), double(vp), n, Double(b1), Double(b2), Double(eps), Double(stepSize), Double(bias2Sqrt), Double(scale), Double(l2))
        }
    }
}

import CEmberSupport
import Foundation

/// The same memory as `Float` or `Double`, for the C loops (callers have checked `T`).
private func float<T>(_ x: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Float> { UnsafeMutableRawPointer(x).assumingMemoryBound(to: Float.self) }
private func double<T>(_ x: UnsafeMutablePointer<T>) -> UnsafeMutablePointer<Double> { UnsafeMutableRawPointer(x).assumingMemoryBound(to: Double.self) }
