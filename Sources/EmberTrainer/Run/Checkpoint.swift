import Ember
import Foundation

/// Everything besides tensors that a resumed run needs, stored as `state.json` beside the
/// tensor files of a checkpoint, with the tensor files' checksums.
public struct CheckpointState: Codable {
    /// 2: `checksums.json` covers `state.json` too (version 1 checkpoints load without it).
    public var version = 2
    /// Epoch in progress (0-based) and batches of it already done (0 at an epoch boundary).
    public var epoch: Int
    public var batchInEpoch: Int
    public var globalStep: Int
    public var worldSize: Int
    public var config: TrainerConfig
    public var optimizerGroups: [[String: Double]]
    public var schedulerEpoch: Int?
    public var plateau: PlateauState?
    /// The best value so far of the monitored metric (`--monitor`, default `val_loss`).
    public var bestValLoss: Double?
    public var epochsWithoutImprovement: Int
    /// Each rank's dropout generator state.
    public var generatorStates: [[UInt64]]
    /// Global sums of the epoch in progress: loss·samples, correct (0 without accuracy), samples.
    public var epochSums: [Double]
    /// The epoch's totals of the task's metrics: name → [value, count] (absent in older checkpoints).
    public var epochMetrics: [String: [Double]]? = nil
    /// The task's and the callbacks' own state (`checkpointState()`), rank 0's.
    public var taskState: Data? = nil
    public var callbackStates: [Data?]? = nil
    /// The checkpoints kept for their monitored value (`--keep-best`).
    public var best: [BestCheckpoint]? = nil
    public var trainSamplesSeen: Double
    public var trainSeconds: Double
    public var history: [EpochRecord]
    public var reason: String
    public var createdAt: String
    /// CRC-32 of each tensor file (version 1; version 2 keeps them in `checksums.json`).
    public var checksums: [String: UInt32] = [:]
}

/// Where the plateau schedule stands (`ReduceLROnPlateau`), for checkpoints.
public struct PlateauState: Codable, Equatable {
    public var best: Double
    public var badEpochs: Int
    public var cooldown: Int
}

/// One line of `metrics.jsonl` (per epoch), also kept in checkpoints for the report. A task's
/// own metrics sit beside the fixed ones, flat: `train_tokens`, `val_perplexity`.
public struct EpochRecord: Codable, Equatable, FlatRecord {
    public var epoch: Int
    public var step: Int
    public var trainLoss: Double
    public var trainAccuracy: Double?
    public var valLoss: Double?
    public var valAccuracy: Double?
    public var lr: Double
    public var epochSeconds: Double
    public var samplesPerSecond: Double
    /// `train_<name>` and `val_<name>` of the task's metrics other than accuracy (flat beside
    /// the fields above in `metrics.jsonl`: `FlatRecord`).
    public var extra: [String: Double] = [:]

    public init(epoch: Int, step: Int, trainLoss: Double, trainAccuracy: Double?, valLoss: Double?, valAccuracy: Double?,
                lr: Double, epochSeconds: Double, samplesPerSecond: Double, extra: [String: Double] = [:]) {
        (self.epoch, self.step, self.trainLoss, self.trainAccuracy, self.valLoss, self.valAccuracy) = (epoch, step, trainLoss, trainAccuracy, valLoss, valAccuracy)
        (self.lr, self.epochSeconds, self.samplesPerSecond, self.extra) = (lr, epochSeconds, samplesPerSecond, extra)
    }

    enum CodingKeys: String, CodingKey, CaseIterable {
        case epoch, step, lr, extra
        case trainLoss = "train_loss", trainAccuracy = "train_accuracy", valLoss = "val_loss", valAccuracy = "val_accuracy"
        case epochSeconds = "epoch_s", samplesPerSecond = "samples_per_s"
    }

    /// Every value by its `metrics.jsonl` name (what early stopping and best checkpoints monitor).
    public var values: [String: Double] {
        var v = extra
        v["train_loss"] = trainLoss
        v["lr"] = lr
        if let trainAccuracy { v["train_accuracy"] = trainAccuracy }
        if let valLoss { v["val_loss"] = valLoss }
        if let valAccuracy { v["val_accuracy"] = valAccuracy }
        return v
    }
}

/// A checkpoint kept because its monitored metric was among the best (`--keep-best`).
public struct BestCheckpoint: Codable, Equatable {
    public var name: String
    public var value: Double
}

/// A checkpoint read back from disk and verified.
public struct LoadedCheckpoint {
    public let path: String
    public let state: CheckpointState
    public let model: [String: Tensor]
    public let optimizer: [String: Tensor]
}

/// Checkpoint directories `run/checkpoints/step-00000042/` holding `model.safetensors` (PyTorch
/// key names), `optimizer.safetensors`, `state.json` and `checksums.json` (CRC-32 of the other
/// three: everything a resume reads is covered). A checkpoint is written into a hidden
/// directory and renamed into place when complete, so a crash never leaves a half-written one
/// under a real name; checksums catch files damaged later.
public enum Checkpoints {
    public static let modelFile = "model.safetensors", optimizerFile = "optimizer.safetensors", stateFile = "state.json"
    public static let checksumFile = "checksums.json"

    /// JSON for state files: non-finite numbers (a NaN validation loss) as strings, not an error.
    static let encoder: JSONEncoder = {
        let e = JSONEncoder()
        e.outputFormatting = [.prettyPrinted, .sortedKeys]
        e.nonConformingFloatEncodingStrategy = .convertToString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return e
    }()
    static let decoder: JSONDecoder = {
        let d = JSONDecoder()
        d.nonConformingFloatDecodingStrategy = .convertFromString(positiveInfinity: "inf", negativeInfinity: "-inf", nan: "nan")
        return d
    }()

    /// A `state.json`, also one an earlier Ember wrote: records with their metrics flat
    /// (`FlatRecord`), options added since then missing from its config (they take their defaults).
    static func decodeState(_ data: Data) throws -> CheckpointState {
        do { return try decoder.decode(CheckpointState.self, from: data) } catch let error as DecodingError {
            guard var object = try? JSONSerialization.jsonObject(with: data) as? [String: Any],
                  let config = object["config"] as? [String: Any] else { throw error }
            object["history"] = (object["history"] as? [[String: Any]])?.map(EpochRecord.nested)
            var merged = try JSONSerialization.jsonObject(with: JSONEncoder().encode(TrainerConfig())) as! [String: Any]
            merged.merge(config) { _, saved in saved }
            object["config"] = merged
            return try decoder.decode(CheckpointState.self, from: JSONSerialization.data(withJSONObject: object))
        }
    }

    /// Removes what killed writers left in a run: half-written checkpoint directories and
    /// temporary files of atomic writes.
    public static func removeTemporaries(runDir: String) {
        let fm = FileManager.default
        for dir in [runDir, directory(runDir: runDir)] {
            for name in (try? fm.contentsOfDirectory(atPath: dir)) ?? [] where name.hasPrefix(".tmp-") || (name.hasPrefix(".") && name.contains(".tmp-")) {
                try? fm.removeItem(atPath: (dir as NSString).appendingPathComponent(name))
            }
        }
    }

    public static func directory(runDir: String) -> String { (runDir as NSString).appendingPathComponent("checkpoints") }

    /// Writes a checkpoint and removes all but the newest `keepLast` and those named in `keep`.
    @discardableResult
    public static func save(runDir: String, state: CheckpointState, model: [String: Tensor], optimizer: [String: Tensor],
                            keepLast: Int, keep: Set<String> = []) throws -> String {
        let dir = directory(runDir: runDir)
        let name = String(format: "step-%08d", state.globalStep) + (state.batchInEpoch > 0 ? "-partial" : "")
        let final = (dir as NSString).appendingPathComponent(name)
        let temp = (dir as NSString).appendingPathComponent(".tmp-\(name)-\(getpid())")
        let fm = FileManager.default
        try? fm.removeItem(atPath: temp)
        try fm.createDirectory(atPath: temp, withIntermediateDirectories: true)
        var moved = false
        defer { if !moved { try? fm.removeItem(atPath: temp) } }  // a failed write leaves nothing behind
        // The tensors stream from memory to the files, their checksums computed on the way.
        let stateData = try encoder.encode(state)
        let sums = [modelFile: try Safetensors.save(model, metadata: ["format": "pt"], to: (temp as NSString).appendingPathComponent(modelFile)),
                    optimizerFile: try Safetensors.save(optimizer, to: (temp as NSString).appendingPathComponent(optimizerFile)),
                    stateFile: Checksum.crc32(stateData)]
        try AtomicFile.write(stateData, to: (temp as NSString).appendingPathComponent(stateFile))
        try AtomicFile.write(try encoder.encode(sums), to: (temp as NSString).appendingPathComponent(checksumFile))
        if fm.fileExists(atPath: final) { try fm.removeItem(atPath: final) }
        try fm.moveItem(atPath: temp, toPath: final)
        moved = true
        AtomicFile.syncDirectory(dir)
        for old in list(runDir: runDir).dropLast(keepLast) where !keep.contains((old as NSString).lastPathComponent) {
            try? fm.removeItem(atPath: old)
        }
        return final
    }

    /// Resuming from an earlier checkpoint starts another timeline: the newer checkpoints (of the
    /// one abandoned) move to `checkpoints/abandoned-<time>/`, kept but out of `latest`'s way, so a
    /// later `--resume latest` follows the run that goes on. Returns what it did, in a line.
    public static func setAsideNewer(than checkpoint: String, runDir: String) throws -> String? {
        let name = (checkpoint as NSString).lastPathComponent
        let newer = list(runDir: runDir).filter { ($0 as NSString).lastPathComponent > name }
        guard !newer.isEmpty else { return nil }
        let f = DateFormatter()
        f.dateFormat = "yyyyMMdd-HHmmss"
        let aside = (directory(runDir: runDir) as NSString).appendingPathComponent("abandoned-\(f.string(from: Date()))")
        try FileManager.default.createDirectory(atPath: aside, withIntermediateDirectories: true)
        for path in newer {
            try FileManager.default.moveItem(atPath: path, toPath: (aside as NSString).appendingPathComponent((path as NSString).lastPathComponent))
        }
        return "resuming from \(name) starts another timeline: its \(newer.count) newer checkpoint\(newer.count == 1 ? "" : "s") moved to \(aside), so --resume latest follows this run"
    }

    /// Checkpoint directories of a run, oldest first.
    public static func list(runDir: String) -> [String] {
        let dir = directory(runDir: runDir)
        let names = (try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []
        return names.filter { $0.hasPrefix("step-") }.sorted().map { (dir as NSString).appendingPathComponent($0) }
    }

    /// Reads and verifies one checkpoint directory.
    public static func load(_ path: String) throws -> LoadedCheckpoint {
        let statePath = (path as NSString).appendingPathComponent(stateFile)
        guard let stateData = FileManager.default.contents(atPath: statePath) else {
            throw DataError.file(path, "is not a checkpoint (no \(stateFile))")
        }
        let state: CheckpointState
        do { state = try decodeState(stateData) } catch {
            throw DataError.file(statePath, "is corrupt (not valid checkpoint JSON)")
        }
        var sums = state.checksums
        if state.version >= 2 {
            let sumsPath = (path as NSString).appendingPathComponent(checksumFile)
            guard let data = FileManager.default.contents(atPath: sumsPath),
                  let decoded = try? decoder.decode([String: UInt32].self, from: data) else {
                throw DataError.file(sumsPath, "is missing or corrupt")
            }
            sums = decoded
            guard let expected = sums[stateFile], Checksum.crc32(stateData) == expected else {
                throw DataError.file(statePath, "was changed after the checkpoint was written (checksum mismatch)")
            }
        }
        var tensors: [String: [String: Tensor]] = [:]
        for file in [modelFile, optimizerFile] {
            let filePath = (path as NSString).appendingPathComponent(file)
            guard let data = FileManager.default.contents(atPath: filePath) else { throw DataError.file(filePath, "is missing") }
            guard let expected = sums[file], Checksum.crc32(data) == expected else {
                throw DataError.file(filePath, "is corrupt or truncated (checksum mismatch)")
            }
            tensors[file] = try Safetensors.decode(data, path: filePath).tensors
        }
        return LoadedCheckpoint(path: path, state: state, model: tensors[modelFile]!, optimizer: tensors[optimizerFile]!)
    }

    /// The newest checkpoint of a run that verifies; damaged newer ones are reported through `warn`.
    public static func latestValid(runDir: String, warn: (String) -> Void) throws -> LoadedCheckpoint {
        let all = list(runDir: runDir)
        guard !all.isEmpty else { throw noCheckpoints(runDir) }
        var problems: [String] = []
        for path in all.reversed() {
            do {
                let c = try load(path)
                for p in problems { warn("\(p); resuming from the previous good checkpoint \(path) instead") }
                return c
            } catch {
                problems.append("\(error)")
            }
        }
        throw DataError("no usable checkpoint in \(directory(runDir: runDir)): \(problems.joined(separator: "; "))")
    }

    /// Resolves `--resume`: "latest" (in `runDir`), a checkpoint directory, or a run directory;
    /// with the run directory the checkpoint belongs to.
    public static func resolve(_ resume: String, runDir: String?, warn: (String) -> Void) throws -> (checkpoint: LoadedCheckpoint, ownRunDir: String) {
        let own = try ownRunDirectory(resume, runDir: runDir)
        if resume != "latest", FileManager.default.fileExists(atPath: (resume as NSString).appendingPathComponent(stateFile)) {
            return (try load(resume), own)
        }
        return (try latestValid(runDir: own, warn: warn), own)
    }

    /// The run directory `--resume` names: `runDir` for "latest", a checkpoint's run, or the
    /// directory itself.
    public static func ownRunDirectory(_ resume: String, runDir: String?) throws -> String {
        if resume == "latest" {
            guard let runDir else { throw ConfigError("--resume latest needs --run-dir (the run to continue)") }
            return runDir
        }
        var isDir: ObjCBool = false
        guard FileManager.default.fileExists(atPath: resume, isDirectory: &isDir), isDir.boolValue else {
            throw ConfigError("--resume \(resume): no such checkpoint or run directory")
        }
        if FileManager.default.fileExists(atPath: (resume as NSString).appendingPathComponent(stateFile)) {
            return ((resume as NSString).deletingLastPathComponent as NSString).deletingLastPathComponent
        }
        return resume
    }

    /// The options of the checkpoint `--resume` names, read without loading its tensors (the
    /// newest checkpoint whose state file reads): what a resumed run's flags go on top of.
    public static func savedConfig(_ resume: String, runDir: String?) throws -> TrainerConfig {
        let own = try ownRunDirectory(resume == "auto" ? "latest" : resume, runDir: runDir)
        let candidates = resume != "latest" && resume != "auto" && FileManager.default.fileExists(atPath: (resume as NSString).appendingPathComponent(stateFile))
            ? [resume] : list(runDir: own).reversed()
        for path in candidates {
            if let data = FileManager.default.contents(atPath: (path as NSString).appendingPathComponent(stateFile)),
               let state = try? decodeState(data) {
                return state.config
            }
        }
        throw noCheckpoints(own)
    }

    /// Said by resume, eval and sample alike: the directory is not a run, or its run saved nothing yet.
    static func noCheckpoints(_ runDir: String) -> DataError {
        DataError("no checkpoints in \(directory(runDir: runDir)): \(runDir) is not a run directory, or its run has saved none yet")
    }
}
