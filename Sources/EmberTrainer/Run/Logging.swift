import Foundation
import Logging

/// Diagnostics through swift-log: rank 0 prints at the chosen level; other ranks print only
/// warnings and errors, prefixed with their rank, so a 64-rank job stays readable.
public struct RankLogHandler: LogHandler {
    public var metadata: Logger.Metadata = [:]
    public var logLevel: Logger.Level
    let rank: Int

    public init(rank: Int, level: Logger.Level) {
        self.rank = rank
        self.logLevel = rank == 0 ? level : max(level, .warning)
    }

    public subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { metadata[key] }
        set { metadata[key] = newValue }
    }

    public func log(event: LogEvent) {
        let level = event.level, message = event.message
        let prefix = rank == 0 ? "" : "[rank \(rank)] "
        let tag: String
        switch level {
        case .warning: tag = "warning: "
        case .error, .critical: tag = "error: "
        case .debug, .trace: tag = "debug: "
        default: tag = ""
        }
        Console.writeLine(prefix + tag + "\(message)", error: level >= .warning || level <= .debug)
    }
}

/// Serialised writes to the terminal (ranks may be threads of one process).
public enum Console {
    private static let lock = NSLock()

    public static func writeLine(_ text: String, error: Bool = false) {
        write(text + "\n", error: error)
    }

    public static func write(_ text: String, error: Bool = false) {
        lock.lock()
        defer { lock.unlock() }
        (error ? FileHandle.standardError : FileHandle.standardOutput).write(Data(text.utf8))
    }
}

extension Logger {
    static func forRank(_ rank: Int, level: String) -> Logger {
        let parsed = Logger.Level(rawValue: level) ?? .info
        return Logger(label: "ember.trainer") { _ in RankLogHandler(rank: rank, level: parsed) }
    }
}
