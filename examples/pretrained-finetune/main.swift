// A Hugging Face model in a loop of one's own: load a GPT-2 directory and its tokenizer, generate
// before, fine-tune on Shakespeare with AdamW (in bf16 where the CPU has bfloat16 units), generate
// after, and save a directory that `transformers` loads, read back here to the same logits.
//
//     swift run -c release PretrainedFinetune [MODEL_DIR] [OUT_DIR]
//
// MODEL_DIR defaults to the tiny GPT-2 the tests use (random weights, a BPE tokenizer of 400
// tokens), so the example runs anywhere; give a real one (`save_pretrained`'s layout) to see a
// real model learn.
import Ember
import Foundation

let arguments = CommandLine.arguments.dropFirst()
let directory = arguments.first ?? "Tests/EmberTests/Fixtures/pretrained/gpt2-bpe"
let keep = arguments.count > 1  // without OUT_DIR the saved directory is checked, then removed
let out = arguments.dropFirst().first ?? NSTemporaryDirectory() + "ember-finetuned-\(ProcessInfo.processInfo.processIdentifier)"

let model = try CausalLM.fromPretrained(directory)
let tokenizer = try BPETokenizer.fromPretrained(directory)
print("\(directory): \(model.config.family) with \(model.parameterCount) parameters, vocabulary \(model.config.vocabularySize)")

// bf16 products where the CPU has the units for them; float32 everywhere else.
let precision: Precision = Precision.bfloat16IsNative ? .bfloat16 : .float32
let prompt = try tokenizer.encode("ROMEO:")
func show(_ when: String) throws {
    let ids = try autocast(precision) { try model.generate(prompt, config: GenerationConfig(maxNewTokens: 24, eosTokenIDs: [])) }
    print("\(when): \(tokenizer.decode(ids).debugDescription)")
}
try show("before")

// The corpus as token ids, then random windows of 64 tokens (each target the next token).
let text = String(try TextFile.read(try Shakespeare.bundledPath()).prefix(200_000))
let ids = try tokenizer.encode(text)
let window = min(64, model.maxPositions)
let generator = Generator(seed: 0)
func batch(_ size: Int) -> (Tensor, Tensor) {
    let starts = Tensor.randint(high: ids.count - window - 1, [size], generator: generator).intScalars
    let x = starts.flatMap { ids[$0..<($0 + window)] }, y = starts.flatMap { ids[($0 + 1)..<($0 + window + 1)] }
    return (Tensor(indices: x, shape: [size, window]), Tensor(indices: y, shape: [size, window]))
}

let vocabulary = model.config.vocabularySize
let optimizer = AdamW(parameters: model.parameters(), learningRate: 1e-3, weightDecay: 0.01)
model.train()
for step in 1...150 {
    let (x, y) = batch(8)
    optimizer.zeroGrad()
    let loss = autocast(precision) { Losses.crossEntropy(model(x).reshape([-1, vocabulary]), y.flatten()) }
    autocast(precision) { loss.backward() }
    GradClip.clipNorm(model.parameters(), maxNorm: 1)
    optimizer.step()
    if step % 50 == 0 { print(String(format: "step %d  loss %.3f  (%@)", step, loss.doubleItem(), precision.rawValue)) }
}
model.eval()
try show("after")

// Out as a Hugging Face directory (float32 weights, the tokenizer's files copied beside them).
try model.savePretrained(out)
for file in ["tokenizer.json", "vocab.json", "merges.txt"] {
    let from = (directory as NSString).appendingPathComponent(file), to = (out as NSString).appendingPathComponent(file)
    if FileManager.default.fileExists(atPath: from) && !FileManager.default.fileExists(atPath: to) {
        try FileManager.default.copyItem(atPath: from, toPath: to)
    }
}
let reread = try CausalLM.fromPretrained(out)
let probe = Tensor(indices: Array(ids.prefix(16)), shape: [1, 16])
let same = noGrad { (model(probe) - reread(probe)).abs().max().doubleItem() }
print("saved to \(out)\(keep ? "" : " (removed at the end)"); read back, its logits differ by \(same)")
if !keep { try FileManager.default.removeItem(atPath: out) }
guard same == 0 else { fatalError("the saved directory does not give the model's logits") }
