// swift-tools-version:6.1
import PackageDescription

/// Settings every Bindery Swift target shares: Swift 6 mode is the package default;
/// `ExistentialAny` makes every existential visible at the point of use.
let strictSettings: [SwiftSetting] = [
    .enableUpcomingFeature("ExistentialAny"),
]

let package = Package(
    name: "Bindery",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "bindery", targets: ["bindery"]),
        // For the Hummingbird peer in `make bench-api` (Tests/Bench/HummingbirdPeer): `PeerAPI` only.
        .library(name: "BinderyAPI", targets: ["BinderyAPI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/groue/GRDB.swift", exact: "7.10.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", exact: "1.8.2"),
        .package(url: "https://github.com/apple/swift-openapi-generator", exact: "1.14.3"),
        .package(url: "https://github.com/apple/swift-openapi-runtime", exact: "1.13.4"),
        .package(url: "https://github.com/apple/swift-http-types", exact: "1.8.0"),
        .package(url: "https://github.com/apple/swift-log", exact: "1.16.2"),
        // At build time only: openapi.yaml becomes JSON the server reads at start to apply every
        // bound the contract states (the binary carries no YAML parser).
        .package(url: "https://github.com/jpsim/Yams", exact: "6.2.2"),
    ],
    targets: [
        // C shim: OpenSSL 3 from the system (libssl-dev), with static inline wrappers for its macros.
        .target(
            name: "COpenSSL",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),

        // C shim: Linux VFIO/iommufd uapi, the nesting ABI, ioctl request codes, non-variadic ioctl.
        .target(name: "CBinderyKernel"),

        // HTTP/1.1 over TLS on POSIX sockets; knows nothing of VFIO.
        .target(
            name: "BinderyHTTP",
            dependencies: ["COpenSSL", "CBinderySockets"],
            swiftSettings: strictSettings
        ),
        // C shim: epoll, accept4, eventfd — absent from Swift's Glibc module.
        .target(name: "CBinderySockets"),
        // C shim: SQLite's process-wide settings (sqlite3_config is variadic).
        .target(name: "CBinderySQLite", linkerSettings: [.linkedLibrary("sqlite3")]),

        // Build-time tool and plugin that embed Migrations/*.sql into BinderyStore.
        .executableTarget(name: "EmbedMigrations", swiftSettings: strictSettings),
        .plugin(
            name: "EmbedMigrationsPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedMigrations"],
            path: "Sources/EmbedMigrationsPlugin"
        ),

        // The version, commit and build date, for `bindery --version` and `GET /v1/host`.
        .plugin(name: "BuildInfoPlugin", capability: .buildTool(), path: "Sources/BuildInfoPlugin"),
        .target(name: "BinderyBuildInfo", swiftSettings: strictSettings, plugins: ["BuildInfoPlugin"]),

        // Build-time tool: openapi.yaml as JSON, so the product needs no YAML parser.
        .executableTarget(
            name: "OpenAPIJSON",
            dependencies: [.product(name: "Yams", package: "Yams")],
            swiftSettings: strictSettings
        ),
        .plugin(
            name: "EmbedOpenAPIPlugin",
            capability: .buildTool(),
            dependencies: ["EmbedMigrations", "OpenAPIJSON"],
            path: "Sources/EmbedOpenAPIPlugin"
        ),

        .target(
            name: "BinderyStore",
            dependencies: [
                "COpenSSL",
                "CBinderySQLite",
                .product(name: "GRDB", package: "GRDB.swift"),
                // SQLite's C API, for the audit chain walk that reads row buffers in place.
                .product(name: "GRDBSQLite", package: "GRDB.swift"),
            ],
            swiftSettings: strictSettings,
            plugins: ["EmbedMigrationsPlugin"]
        ),

        .target(
            name: "BinderyKernel",
            dependencies: ["CBinderyKernel"],
            swiftSettings: strictSettings
        ),

        .target(
            name: "BinderyReconciler",
            dependencies: ["BinderyStore", "BinderyKernel"],
            swiftSettings: strictSettings
        ),

        // The REST API: handlers generated from openapi.yaml, served through BinderyHTTP.
        .target(
            name: "BinderyNotify",
            dependencies: ["CBinderySockets"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BinderyVMM",
            dependencies: ["BinderyReconciler", "BinderyStore", "CBinderySockets"],
            swiftSettings: strictSettings
        ),
        .target(
            name: "BinderyAPI",
            dependencies: [
                "BinderyVMM", "BinderyNotify", "BinderyBuildInfo",
                "BinderyHTTP", "BinderyStore", "BinderyReconciler", "BinderyKernel",
                .product(name: "OpenAPIRuntime", package: "swift-openapi-runtime"),
                .product(name: "HTTPTypes", package: "swift-http-types"),
            ],
            swiftSettings: strictSettings,
            plugins: [.plugin(name: "OpenAPIGenerator", package: "swift-openapi-generator"), "EmbedOpenAPIPlugin"]
        ),

        .executableTarget(
            name: "bindery",
            dependencies: [
                "BinderyStore",
                "BinderyAPI",
                "BinderyVMM",
                "BinderyHTTP",
                "BinderyBuildInfo",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strictSettings
        ),

        // Fuzz target (libFuzzer with -DFUZZING, a corpus replayer otherwise); `make fuzz`.
        .executableTarget(
            name: "bindery-fuzz",
            dependencies: ["BinderyHTTP", "BinderyKernel"],
            path: "Sources/BinderyFuzz",
            swiftSettings: strictSettings
        ),

        // HTTPS load generator with client certificates (wrk has none), for make bench-http.
        .executableTarget(
            name: "bindery-load",
            path: "Sources/BinderyLoad",
            linkerSettings: [.linkedLibrary("ssl"), .linkedLibrary("crypto")]
        ),

        // Benchmark and torture drivers (`make bench`, crash tests); not shipped.
        .executableTarget(
            name: "bindery-bench",
            dependencies: [
                "BinderyStore",
                "BinderyHTTP",
                "BinderyReconciler",
                .product(name: "GRDB", package: "GRDB.swift"),
                "BinderyKernel",
                "CBinderyKernel",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/BinderyBench",
            swiftSettings: strictSettings
        ),

        .testTarget(
            name: "BinderyKernelTests",
            dependencies: ["BinderyKernel", "CBinderyKernel"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BinderyHTTPTests",
            dependencies: ["BinderyHTTP", "COpenSSL"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BinderyReconcilerTests",
            dependencies: ["BinderyReconciler", "BinderyStore", "BinderyKernel", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BinderyAPITests",
            dependencies: ["BinderyAPI", "BinderyHTTP", "BinderyStore", .product(name: "GRDB", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BinderyVMMTests",
            dependencies: ["BinderyVMM", "BinderyReconciler", "BinderyStore", "BinderyKernel"],
            swiftSettings: strictSettings
        ),
        .testTarget(
            name: "BinderyStoreTests",
            dependencies: ["BinderyStore", .product(name: "GRDB", package: "GRDB.swift"), .product(name: "GRDBSQLite", package: "GRDB.swift")],
            swiftSettings: strictSettings
        ),
    ]
)
