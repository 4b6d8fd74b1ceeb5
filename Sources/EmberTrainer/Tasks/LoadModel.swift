import Ember
import Foundation

extension Trainer {
    /// A task's model with a run's weights, ready for inference (eval mode), like Lightning's
    /// `load_from_checkpoint`: `path` is a run directory (its `final.safetensors`, else its
    /// latest good checkpoint), a checkpoint directory, or a `.safetensors` file. The run must
    /// have trained this task (its recorded name) and the weights must fit the model the task
    /// builds; either mistake is one line naming it.
    public static func loadModel<Task: TrainingTask>(_ task: Task, from path: String) throws -> Task.Model {
        let (weights, config) = try runWeights(path)
        if let config, let recorded = config.task ?? (config.model.rawValue as String?), recorded != task.name {
            throw ConfigError("\(path) holds a run of \(config.task == nil ? "the preset --model \(recorded)" : "the task \(recorded)"), not of \(task.name)")
        }
        let model = try task.makeModel(generators: ModelGenerators(seed: config?.seed ?? 0))
        do { try model.loadStateDict(weights) } catch {
            throw ConfigError("\(path) does not fit \(task.name)'s model: \(error)")
        }
        model.eval()
        return model
    }

    /// The weights at `path` and, when it belongs to a run, the run's options.
    static func runWeights(_ path: String) throws -> (weights: [String: Tensor], config: TrainerConfig?) {
        let fm = FileManager.default
        var isDir: ObjCBool = false
        guard fm.fileExists(atPath: path, isDirectory: &isDir) else { throw ConfigError("\(path): no such run directory, checkpoint or weights file") }
        if !isDir.boolValue { return (try Safetensors.load(path).tensors, nil) }
        let final = (path as NSString).appendingPathComponent("final.safetensors")
        let configFile = (path as NSString).appendingPathComponent("config.json")
        if fm.fileExists(atPath: final), let data = fm.contents(atPath: configFile) {
            let config = try? JSONDecoder().decode(TrainerConfig.self, from: data)
            return (try Safetensors.load(final).tensors, config)
        }
        let checkpoint = try CheckpointTools.checkpoint(path)
        return (checkpoint.model, checkpoint.state.config)
    }
}
