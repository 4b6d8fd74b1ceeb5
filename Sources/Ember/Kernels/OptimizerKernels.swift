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
            // The common cases as straight loops the compiler vectorises; the general loop below.
            if let buf, !s.firstStep, !s.nesterov, !s.maximize {
                if s.weightDecay == 0 {
                    for i in 0..<n { buf[i] = mu * buf[i] + damp * grad[i]; param[i] -= lr * buf[i] }
                } else {
                    for i in 0..<n { buf[i] = mu * buf[i] + damp * (grad[i] + wd * param[i]); param[i] -= lr * buf[i] }
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
            if vmax == nil && !s.maximize && (s.weightDecay == 0 || s.decoupled) {
                // Plain Adam or AdamW: one vectorisable loop.
                let scale = s.weightDecay == 0 ? 1 : decay
                for i in 0..<p.count {
                    let d = grad[i]
                    mp[i] = b1 * mp[i] + (1 - b1) * d
                    vp[i] = b2 * vp[i] + (1 - b2) * d * d
                    param[i] = param[i] * scale - stepSize * mp[i] / (vp[i].squareRoot() / bias2Sqrt + eps)
                }
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
}

import Foundation
