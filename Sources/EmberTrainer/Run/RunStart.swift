import Ember
import Foundation

/// How a run starts: fresh, continuing its own run from a checkpoint, or as a new run in an empty
/// directory from another run's checkpoint. Decided before anything is written, so a resume never
/// writes into a directory that holds another run.
struct RunStart {
    var config: TrainerConfig
    var runDir: String
    var checkpoint: LoadedCheckpoint?
    /// The checkpoint is this run directory's own: the run goes on there.
    var continuesRun: Bool
    /// `--resume auto` with no checkpoint yet: a start in place of one that died before its first.
    var replacesFailedStart: Bool
    /// A fresh start in a directory that holds only what an abandoned start wrote (no checkpoint,
    /// no final weights): those files are replaced instead of blocking the retry.
    var overAbandonedStart: Bool
    /// The checkpoint a new run starts from, when it belongs to another run directory.
    var forkedFrom: String?
}

extension Trainer {
    /// Options that change what a checkpoint's tensors mean: a resume may not override them.
    static let meaningOptions: [(flag: String, value: (TrainerConfig) -> String)] = [
        ("--model", { $0.model.rawValue }), ("--data", { $0.data }), ("--tokenizer", { $0.tokenizer }),
        ("--n-layer", { "\($0.nLayer)" }), ("--n-head", { "\($0.nHead)" }), ("--n-embd", { "\($0.nEmbd)" }),
        ("--block-size", { "\($0.blockSize)" }), ("--hidden-size", { "\($0.hiddenSize)" }),
        ("--tie-embeddings", { "\($0.tieEmbeddings.map { "\($0)" } ?? "default")" }),
        ("--layers", { $0.layers.map { "\($0)" } ?? "preset" }),
        ("the task", { $0.task ?? "none (a preset)" }),
        ("--pretrained", { $0.pretrained ?? "none" }),
    ]

    /// The run's start: `--resume auto|latest|PATH` resolved, the checkpoint's options as the
    /// base with `overrides` on top (checked after the merge), the directory's owner decided.
    static func resolveStart(_ initial: TrainerConfig, overrides: (inout TrainerConfig) -> Void, forTask: Bool,
                             warn: (String) -> Void) throws -> RunStart {
        var config = initial
        let autoFresh = config.resume == "auto" && Checkpoints.list(runDir: config.runDir ?? "").isEmpty
        if autoFresh { config.resume = nil }
        guard let resume = config.resume else {
            let dir = config.runDir ?? defaultRunDirectory()
            config.runDir = dir
            return RunStart(config: config, runDir: dir, checkpoint: nil, continuesRun: false, replacesFailedStart: autoFresh,
                            overAbandonedStart: !autoFresh && isAbandonedStart(dir), forkedFrom: nil)
        }
        let resolved = try Checkpoints.resolve(resume == "auto" ? "latest" : resume, runDir: config.runDir, warn: warn)
        let dir = config.runDir ?? resolved.ownRunDir
        let forked = !sameDirectory(dir, resolved.ownRunDir)
        if forked && !isEmptyOrAbsent(dir) {
            throw ConfigError("--resume \(resume) is a checkpoint of the run in \(resolved.ownRunDir), but --run-dir \(dir) holds another run: nothing was written. Continue that run with --run-dir \(resolved.ownRunDir), or start a new run from its checkpoint in an empty --run-dir")
        }
        let saved = resolved.checkpoint.state.config
        var merged = saved
        overrides(&merged)
        merged.resume = resume
        merged.runDir = dir
        for option in meaningOptions where option.value(saved) != option.value(merged) {
            throw ConfigError("\(option.flag) \(option.value(merged)) would change what the checkpoint holds (its run used \(option.value(saved))): resume without it, or start a new run")
        }
        try merged.validate(forTask: forTask)
        return RunStart(config: merged, runDir: dir, checkpoint: resolved.checkpoint, continuesRun: !forked, replacesFailedStart: false,
                        overAbandonedStart: false, forkedFrom: forked ? resolved.checkpoint.path : nil)
    }

    static func sameDirectory(_ a: String, _ b: String) -> Bool {
        func canonical(_ p: String) -> String {
            let url = URL(fileURLWithPath: p).standardizedFileURL.resolvingSymlinksInPath()
            return url.path
        }
        return canonical(a) == canonical(b)
    }

    static func isEmptyOrAbsent(_ dir: String) -> Bool {
        ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).allSatisfy { $0 == RunDirectoryLock.fileName }
    }

    /// Only what a start that never reached its first checkpoint writes (a crash, a mistake in
    /// the model found after the first step), and no checkpoint.
    static func isAbandonedStart(_ dir: String) -> Bool {
        let names = ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { !$0.hasPrefix(".") }
        return !names.isEmpty && names.allSatisfy(failedStartFiles.contains) && Checkpoints.list(runDir: dir).isEmpty
            && ((try? FileManager.default.contentsOfDirectory(atPath: Checkpoints.directory(runDir: dir))) ?? []).filter { !$0.hasPrefix(".") }.isEmpty
    }
}
