import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// A run directory's one owner: an advisory lock (`flock`) on the directory itself, held by rank 0
/// for the run's life. The kernel releases it when the process dies, so a killed run never
/// leaves a stale lock, and no file is written for it: every file of the run stays as it was.
/// A second trainer on the same directory is refused naming the holder (from /proc/locks).
/// Ranks of one job share it through rank 0.
final class RunDirectoryLock {
    /// Left by earlier versions, which locked a file; never counted as a run's content.
    static let fileName = ".lock"
    let directory: String
    /// Whether this lock made the directory (so a start that fails can remove it again).
    let createdDirectory: Bool
    private var fd: Int32

    /// Takes the lock, creating the directory if need be; throws naming the holder when another
    /// process has it. `madeForThisRun`: the directory was made for this start already (a default
    /// name reserved), so a failed start removes it all the same.
    init(directory: String, madeForThisRun: Bool = false) throws {
        self.directory = directory
        let fm = FileManager.default
        createdDirectory = madeForThisRun || !fm.fileExists(atPath: directory)
        do {
            try fm.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw ConfigError("cannot create run directory \(directory): \(Self.reason(error))")
        }
        fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw ConfigError("cannot open run directory \(directory): \(String(cString: strerror(errno)))") }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let holder = Self.holder(of: fd).map { "pid \($0) on host \(ProcessInfo.processInfo.hostName)" } ?? "holder unknown"
            close(fd)
            throw ConfigError("run directory \(directory) is in use by another trainer (\(holder)); wait for it to finish, stop it, or choose another --run-dir")
        }
    }

    /// The pid holding a flock on the file behind `fd`, from /proc/locks (Linux).
    static func holder(of fd: Int32) -> Int? {
        var st = stat()
        guard fstat(fd, &st) == 0, let locks = try? String(contentsOfFile: "/proc/locks", encoding: .utf8) else { return nil }
        // "1: FLOCK  ADVISORY  WRITE 23126 fe:01:1234567 0 EOF": pid, then major:minor:inode.
        for line in locks.split(separator: "\n") {
            let fields = line.split(separator: " ", omittingEmptySubsequences: true)
            guard fields.count >= 6, fields[1] == "FLOCK", fields[5].split(separator: ":").last == Substring("\(st.st_ino)") else { continue }
            return Int(fields[4])
        }
        return nil
    }

    /// Releases the lock; after a failed start, removes the directory when this start made it
    /// and nothing is in it.
    func release(failedStart: Bool = false) {
        guard fd >= 0 else { return }
        let fm = FileManager.default
        if failedStart, createdDirectory, ((try? fm.contentsOfDirectory(atPath: directory)) ?? ["?"]).isEmpty {
            try? fm.removeItem(atPath: directory)
        }
        close(fd)
        fd = -1
    }

    deinit { release() }

    /// The operating system's words for a file error (not Foundation's generic ones).
    static func reason(_ error: Error) -> String {
        let ns = error as NSError
        if let posix = ns.userInfo[NSUnderlyingErrorKey] as? NSError, posix.domain == NSPOSIXErrorDomain {
            return String(cString: strerror(Int32(posix.code)))
        }
        return ns.localizedDescription
    }
}
