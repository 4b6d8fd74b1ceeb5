import Ember
import Foundation

/// A fine-tuned pretrained model as a Hugging Face directory, `RUN/hf/`: the run's final weights
/// under the original names (`config.json`, `model.safetensors`, float32) and the tokenizer's
/// files copied, so `AutoModelForCausalLM.from_pretrained("RUN/hf")` and
/// `AutoTokenizer.from_pretrained("RUN/hf")` read it.
enum PretrainedExport {
    static let tokenizerFiles = ["tokenizer.json", "vocab.json", "merges.txt", "tokenizer_config.json",
                                 "special_tokens_map.json", "generation_config.json"]

    static func write(run: String, from directory: String) throws {
        let final = (run as NSString).appendingPathComponent("final.safetensors")
        guard FileManager.default.fileExists(atPath: final) else { return }  // a diverged run keeps no final weights
        let lm = try CausalLM.fromPretrained(directory)
        try lm.loadStateDict(try Safetensors.load(final).tensors)
        let out = (run as NSString).appendingPathComponent("hf")
        do {
            try lm.savePretrained(out)
            for name in tokenizerFiles {
                let source = (directory as NSString).appendingPathComponent(name), target = (out as NSString).appendingPathComponent(name)
                guard FileManager.default.fileExists(atPath: source) else { continue }
                try? FileManager.default.removeItem(atPath: target)
                try FileManager.default.copyItem(atPath: source, toPath: target)
            }
        } catch {
            throw IOFailure("cannot write the fine-tuned model to \(out): \(error)")
        }
        Console.writeLine("fine-tuned model: \(out) (transformers' from_pretrained reads it)")
    }
}
