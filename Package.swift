// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "Ember",
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .library(name: "EmberDistributed", targets: ["EmberDistributed"]),
        .library(name: "EmberTrainer", targets: ["EmberTrainer"]),
        .executable(name: "trainer", targets: ["trainer"]),
        .executable(name: "CustomTraining", targets: ["CustomTraining"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
    ],
    targets: [
        // OpenBLAS through pkg-config; Debian puts cblas.h in an openblas-pthread include dir.
        .systemLibrary(
            name: "CBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev"])]
        ),
        // zlib, for gzip-compressed datasets.
        .systemLibrary(name: "CZlib", pkgConfig: "zlib", providers: [.apt(["zlib1g-dev"])]),
        // C support: per-thread autograd state (grad mode, the backward pass running), vectorised
        // loops the compiler would leave scalar in Swift (optimizer updates, square roots, sums),
        // and the shared-memory barrier.
        .target(name: "CEmberSupport"),
        // The float32 matrix-product engine: oneDNN (Debian's libdnnl-dev), whose JIT picks kernels
        // from the CPU's features (Sources/Ember/Kernels/Products.swift chooses between it and BLAS).
        .target(name: "CEmberProducts", linkerSettings: [.linkedLibrary("dnnl")]),
        .target(
            name: "Ember",
            dependencies: ["CBLAS", "CEmberSupport", "CEmberProducts", "CZlib"]
        ),
        // OpenMPI's mpi.h; macros such as MPI_COMM_WORLD reach Swift through inline functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "EmberDistributed", dependencies: ["Ember", "CMPI"]),
        .target(
            name: "EmberTrainer",
            dependencies: ["Ember", "EmberDistributed", .product(name: "Logging", package: "swift-log"),
                           .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(
            name: "trainer",
            dependencies: ["EmberTrainer", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        // Examples: `swift run NAME` (see docs/examples.md).
        .executableTarget(name: "AutogradBasics", dependencies: ["Ember"], path: "examples/autograd-basics"),
        .executableTarget(name: "ArticleNet", dependencies: ["Ember"], path: "examples/article-net"),
        .executableTarget(name: "CustomLayer", dependencies: ["Ember"], path: "examples/custom-layer"),
        .executableTarget(name: "CustomOptimizer", dependencies: ["Ember"], path: "examples/custom-optimizer"),
        .executableTarget(name: "CustomLoss", dependencies: ["Ember"], path: "examples/custom-loss"),
        .executableTarget(name: "CustomActivation", dependencies: ["Ember"], path: "examples/custom-activation"),
        .executableTarget(name: "CustomConv", dependencies: ["Ember"], path: "examples/custom-conv"),
        .executableTarget(name: "CustomFunction", dependencies: ["Ember"], path: "examples/custom-function"),
        .executableTarget(name: "CustomDataset", dependencies: ["Ember"], path: "examples/custom-dataset"),
        .executableTarget(name: "Regularization", dependencies: ["Ember"], path: "examples/regularization"),
        .executableTarget(name: "ResNetSmall", dependencies: ["Ember"], path: "examples/resnet-small"),
        .executableTarget(name: "CustomTraining", dependencies: ["Ember", "EmberTrainer"], path: "examples/custom-training"),
        .executableTarget(name: "PretrainedFinetune", dependencies: ["Ember"], path: "examples/pretrained-finetune"),
        // API mistakes that must stop with their message in release builds (launch/test runs it).
        .executableTarget(name: "APIMistakes", dependencies: ["Ember"], path: "Tests/APIMistakes"),
        // A task with a shape mistake in its model: one line per failing rank under the launcher.
        .executableTarget(name: "MistakeInTask", dependencies: ["Ember", "EmberTrainer"], path: "Tests/MistakeInTask"),
        .testTarget(
            name: "EmberTests",
            dependencies: ["Ember"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "EmberDistributedTests", dependencies: ["EmberDistributed", "Ember"]),
        .testTarget(name: "EmberTrainerTests", dependencies: ["EmberTrainer", "EmberDistributed", "Ember"]),
    ]
)
