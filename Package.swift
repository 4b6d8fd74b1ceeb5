// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "Ember",
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .library(name: "EmberDistributed", targets: ["EmberDistributed"]),
        .library(name: "EmberTrainer", targets: ["EmberTrainer"]),
        .executable(name: "trainer", targets: ["trainer"]),
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
        // Thread-local state (grad mode) that Swift cannot declare portably.
        .target(name: "CEmberSupport"),
        .target(
            name: "Ember",
            dependencies: ["CBLAS", "CEmberSupport", "CZlib"]
        ),
        // OpenMPI's mpi.h; macros such as MPI_COMM_WORLD reach Swift through inline functions.
        .systemLibrary(name: "CMPI", pkgConfig: "ompi-c", providers: [.apt(["libopenmpi-dev"])]),
        .target(name: "EmberDistributed", dependencies: ["Ember", "CMPI"]),
        .target(
            name: "EmberTrainer",
            dependencies: ["Ember", "EmberDistributed", .product(name: "Logging", package: "swift-log")]
        ),
        .executableTarget(
            name: "trainer",
            dependencies: ["EmberTrainer", .product(name: "ArgumentParser", package: "swift-argument-parser")]
        ),
        .executableTarget(name: "AutogradBasics", dependencies: ["Ember"], path: "examples/autograd-basics"),
        .testTarget(
            name: "EmberTests",
            dependencies: ["Ember"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "EmberDistributedTests", dependencies: ["EmberDistributed", "Ember"]),
        .testTarget(name: "EmberTrainerTests", dependencies: ["EmberTrainer", "EmberDistributed", "Ember"]),
    ]
)
