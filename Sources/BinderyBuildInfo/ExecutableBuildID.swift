import Glibc

extension BuildInfo {
    /// The GNU build id of the running executable (the linker's `NT_GNU_BUILD_ID` note), nil
    /// without one: unlike `commit` and `builtAt`, it changes with every link of different code,
    /// committed or not. Read once, from the program headers the kernel mapped (found through
    /// `/proc/self/auxv`).
    package static let executableBuildID: [UInt8]? = readExecutableBuildID()

    private static func readExecutableBuildID() -> [UInt8]? {
        guard let auxv = fopen("/proc/self/auxv", "r") else { return nil }
        defer { fclose(auxv) }
        var headers: UInt = 0, count = 0
        var pair = (UInt64(0), UInt64(0))
        while fread(&pair, 16, 1, auxv) == 1, pair.0 != 0 {
            if pair.0 == 3 { headers = UInt(pair.1) }  // AT_PHDR
            if pair.0 == 5 { count = Int(pair.1) }  // AT_PHNUM
        }
        guard headers != 0, (1..<1024).contains(count) else { return nil }
        // Elf64_Phdr: p_type at 0, p_vaddr at 16, p_memsz at 40; 56 bytes each.
        let table = (0..<count).compactMap { UnsafeRawPointer(bitPattern: headers + UInt($0 * 56)) }
        func type(_ header: UnsafeRawPointer) -> UInt32 { header.loadUnaligned(as: UInt32.self) }
        func field(_ header: UnsafeRawPointer, _ offset: Int) -> UInt { UInt(header.loadUnaligned(fromByteOffset: offset, as: UInt64.self)) }
        guard let programHeaders = table.first(where: { type($0) == 6 }) else { return nil }  // PT_PHDR: gives the load bias
        let bias = headers &- field(programHeaders, 16)
        for header in table where type(header) == 4 {  // PT_NOTE
            guard var note = UnsafeRawPointer(bitPattern: bias &+ field(header, 16)) else { continue }
            let end = note + Int(field(header, 40))
            while end - note >= 12 {
                let nameSize = Int(note.loadUnaligned(as: UInt32.self))
                let descriptionSize = Int(note.loadUnaligned(fromByteOffset: 4, as: UInt32.self))
                let name = note + 12, description = name + ((nameSize + 3) & ~3)
                guard end - description >= descriptionSize else { break }
                // NT_GNU_BUILD_ID, owner "GNU".
                if note.loadUnaligned(fromByteOffset: 8, as: UInt32.self) == 3, nameSize == 4, memcmp(name, "GNU", 4) == 0 {
                    return Array(UnsafeRawBufferPointer(start: description, count: descriptionSize))
                }
                note = description + ((descriptionSize + 3) & ~3)
            }
        }
        return nil
    }
}
