// bindery-fuzz: the HTTP parser and the nesting bind-payload decoder under libFuzzer.
//
// Built with `-Xswiftc -sanitize=fuzzer -Xswiftc -DFUZZING` (make fuzz / make test) it runs
// libFuzzer; built normally it replays the files or directories it is given, so a crash
// found once stays a regression test. BINDERY_FUZZ_TARGET selects `http` (default) or `bind`.
import BinderyHTTP
import BinderyKernel
import Foundation

/// Feeds one input to the HTTP head parser, then the rest of it to the chunked decoder.
func fuzzHTTP(_ bytes: UnsafeBufferPointer<UInt8>) {
    var limits = HTTPLimits()
    limits.maxBodyBytes = 64 * 1024
    switch HTTPHeadParser.parse(bytes, limits: limits) {
    case let .head(head, length):
        precondition(length <= bytes.count, "parser consumed more than it was given")
        if head.framing == .chunked {
            var decoder = ChunkedDecoder(limits: limits)
            let rest = UnsafeBufferPointer(rebasing: bytes[length...])
            switch decoder.decode(rest) {
            case let .needMore(consumed), let .done(consumed): precondition(consumed <= rest.count)
            case .failure: break
            }
            precondition(decoder.body.count <= limits.maxBodyBytes, "decoder exceeded the body limit")
        }
    case let .failure(error):
        precondition([400, 413, 414, 431, 501, 505].contains(error.status), "unexpected status \(error.status)")
    case .incomplete:
        break
    }
}

/// Feeds one input to the bind-payload decoder (as the simulated kernel reads it).
func fuzzBind(_ bytes: UnsafeBufferPointer<UInt8>) {
    let buffer = KernelBuffer(count: max(bytes.count, 72))
    if let base = bytes.baseAddress { buffer.bytes.baseAddress!.copyMemory(from: base, byteCount: bytes.count) }
    if case let .success(bind) = GuestPageTableBind.decode(buffer.raw, available: bytes.count) {
        precondition(bind.version == 1 && bind.format == 1, "decoder accepted an unknown version or format")
        precondition(bytes.count >= GuestPageTableBind.sizeV1VTD, "decoder read past the bytes it was given")
    }
}

let target = ProcessInfo.processInfo.environment["BINDERY_FUZZ_TARGET"] ?? "http"
/// The function the selected target runs on each input.
func fuzz(_ bytes: UnsafeBufferPointer<UInt8>) {
    if target == "bind" { fuzzBind(bytes) } else { fuzzHTTP(bytes) }
}

#if FUZZING
/// libFuzzer's entry point for one input.
@_cdecl("LLVMFuzzerTestOneInput")
func fuzzerTestOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> Int32 {
    fuzz(UnsafeBufferPointer(start: data, count: size))
    return 0
}

@_silgen_name("LLVMFuzzerRunDriver")
func LLVMFuzzerRunDriver(
    _ argc: UnsafeMutablePointer<Int32>,
    _ argv: UnsafeMutablePointer<UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>?>,
    _ callback: @convention(c) (UnsafePointer<UInt8>?, Int) -> Int32
) -> Int32

var argc = CommandLine.argc
var argv: UnsafeMutablePointer<UnsafeMutablePointer<CChar>?>? = CommandLine.unsafeArgv
exit(LLVMFuzzerRunDriver(&argc, &argv, fuzzerTestOneInput))
#else
var files: [String] = []
for argument in CommandLine.arguments.dropFirst() {
    var isDirectory: ObjCBool = false
    guard FileManager.default.fileExists(atPath: argument, isDirectory: &isDirectory) else {
        FileHandle.standardError.write(Data("bindery-fuzz: no such file \(argument)\n".utf8))
        exit(2)
    }
    if isDirectory.boolValue {
        files += (try FileManager.default.contentsOfDirectory(atPath: argument)).sorted().map { argument + "/" + $0 }
    } else {
        files.append(argument)
    }
}
for file in files {
    let bytes = [UInt8](FileManager.default.contents(atPath: file) ?? Data())
    bytes.withUnsafeBufferPointer { fuzz($0) }
}
print("bindery-fuzz: replayed \(files.count) \(target) inputs without a crash")
#endif
