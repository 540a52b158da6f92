import Foundation
import PackagePlugin

/// Embeds the top-level openapi.yaml into BinderyAPI, so `GET /v1/openapi.yaml` serves the
/// contract the binary was built from, wherever the binary runs.
@main
struct EmbedOpenAPIPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let spec = context.package.directoryURL.appending(path: "openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedOpenAPI.swift")
        return [
            .buildCommand(
                displayName: "Embedding openapi.yaml",
                executable: try context.tool(named: "EmbedMigrations").url,
                arguments: [output.path, "embeddedOpenAPIFiles", spec.path],
                inputFiles: [spec],
                outputFiles: [output]
            ),
        ]
    }
}
