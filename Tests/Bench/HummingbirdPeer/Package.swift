// swift-tools-version:6.1
import PackageDescription

/// The Hummingbird 2 peer for `make bench-api` (issue #13): Bindery's generated handlers
/// (`PeerAPI` from the root package's `BinderyAPI` library) served through Hummingbird with
/// NIOSSL, so the benchmark compares transports on the same handlers and store. A package of
/// its own so that the product never depends on NIO. Not shipped, not part of `make test`.
let package = Package(
    name: "HummingbirdPeer",
    platforms: [.macOS(.v14)],
    dependencies: [
        .package(name: "Bindery", path: "../../.."),
        // No default traits: swift-configuration support is not needed here.
        .package(url: "https://github.com/hummingbird-project/hummingbird", exact: "2.28.1", traits: []),
        .package(url: "https://github.com/hummingbird-project/swift-openapi-hummingbird", exact: "2.1.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", exact: "2.37.6"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", exact: "1.13.4"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
    ],
    targets: [
        .executableTarget(
            name: "bindery-hummingbird-peer",
            dependencies: [
                .product(name: "BinderyAPI", package: "Bindery"),
                .product(name: "Hummingbird", package: "hummingbird"),
                .product(name: "HummingbirdTLS", package: "hummingbird"),
                .product(name: "OpenAPIHummingbird", package: "swift-openapi-hummingbird"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "Logging", package: "swift-log"),
            ]
        ),
    ]
)
