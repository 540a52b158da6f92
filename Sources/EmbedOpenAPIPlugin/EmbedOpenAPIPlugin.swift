import Foundation
import PackagePlugin

/// Embeds the top-level openapi.yaml into BinderyAPI, so `GET /v1/openapi.yaml` serves the
/// contract the binary was built from, wherever the binary runs; and the same document as JSON,
/// which the server checks requests against (no YAML parser in the binary).
@main
struct EmbedOpenAPIPlugin: BuildToolPlugin {
    func createBuildCommands(context: PluginContext, target: any Target) throws -> [Command] {
        let spec = context.package.directoryURL.appending(path: "openapi.yaml")
        let output = context.pluginWorkDirectoryURL.appending(path: "EmbeddedOpenAPI.swift")
        let json = context.pluginWorkDirectoryURL.appending(path: "EmbeddedOpenAPIJSON.swift")
        return [
            .buildCommand(
                displayName: "Embedding openapi.yaml as JSON",
                executable: try context.tool(named: "OpenAPIJSON").url,
                arguments: [json.path, spec.path],
                inputFiles: [spec],
                outputFiles: [json]
            ),
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
