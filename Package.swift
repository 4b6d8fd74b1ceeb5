// swift-tools-version:5.9
import PackageDescription

let package = Package(
    name: "Ember",
    products: [
        .library(name: "Ember", targets: ["Ember"]),
        .library(name: "EmberDistributed", targets: ["EmberDistributed"]),
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
        .executableTarget(name: "AutogradBasics", dependencies: ["Ember"], path: "examples/autograd-basics"),
        .testTarget(
            name: "EmberTests",
            dependencies: ["Ember"],
            resources: [.copy("Fixtures")]
        ),
        .testTarget(name: "EmberDistributedTests", dependencies: ["EmberDistributed", "Ember"]),
    ]
)
