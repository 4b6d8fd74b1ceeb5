// The README's first example: a dynamic graph, backward, and the gradients it leaves behind.
import Ember

let a = Tensor([1, 2, 3, 4, 5, 6], shape: [2, 3], requiresGrad: true)
let b = Tensor.randn([3, 2], generator: Generator(seed: 0), requiresGrad: true)
let c = Tensor([0.5, -0.5], requiresGrad: true)
let y = ((a * 2 - 1).relu().matmul(b) + c).sigmoid().sum()
y.backward()                        // fills a.grad, b.grad, c.grad
print("y =", y)
print("dy/dc =", c.grad!)
let x = Tensor([3], dtype: .float64, requiresGrad: true)
let dx = try grad(of: [(x * x * x).sum()], wrt: [x], createGraph: true)[0]!
print("d(x^3)/dx at 3 =", dx.doubleItem(), " second derivative:", try grad(of: [dx.sum()], wrt: [x])[0]!.doubleItem())
