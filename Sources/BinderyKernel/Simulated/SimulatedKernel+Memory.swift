import CBinderyKernel
import Glibc

extension SimulatedKernel {
    /// Guest memory files are the host's own files even on a simulated host: the same
    /// `openat2` rules decide, then the simulated kernel tracks the file like any other.
    public func openBeneath(_ directory: String, _ relative: String, flags: Int32) -> Int32 {
        let real = bindery_open_beneath(directory, relative, flags)
        guard real >= 0 else { return real }
        Glibc.close(real)
        return open(directory + "/" + relative, flags: flags)
    }
}
