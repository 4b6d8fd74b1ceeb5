/// How Ember stops on a mistake an API cannot throw for (an operator, a layer's forward).
///
/// `precondition` and `assert` lose their messages in release builds (`-O` prints only
/// "precondition failure"), and release is how users run Ember, so every check a caller can trip
/// is written with `require`, which prints the message in every build, or throws.

/// Stops the program with `message` when `condition` is false, in release builds too.
/// For other Ember modules (`@_spi(Checks) import Ember`).
/// The message names the check's place in Ember's sources (`Ember/Linear.swift:18: Fatal error: …`).
@_spi(Checks) @inline(__always)
public func require(_ condition: @autoclosure () -> Bool, _ message: @autoclosure () -> String,
                    file: StaticString = #fileID, line: UInt = #line) {
    if !condition() { stop(message(), file: file, line: line) }
}

/// Stops the program with `message`, in release builds too: through the mistake handler when
/// one is set (the trainer prints the message in one line, with its rank, and exits), else
/// `fatalError` (the message, its place in Ember's sources, and a backtrace).
@_spi(Checks) @inline(never)
public func stop(_ message: String, file: StaticString = #fileID, line: UInt = #line) -> Never {
    if let handler = Mistakes.handler { handler(message, "\(file):\(line)") }
    fatalError(message, file: file, line: line)
}

/// What happens when code makes a mistake Ember cannot throw for (a shape mismatch in an
/// operator, a bad argument to a layer). By default the program stops with `fatalError`: the
/// message and a backtrace. A program can instead report it its own way and end (`trainer` and
/// `TrainingCommandLine` print one line per failing rank and exit with status 1).
public enum Mistakes {
    /// Receives the message and its place in Ember's sources; must not return.
    public typealias Handler = @Sendable (_ message: String, _ location: String) -> Never

    /// Set once, before work starts (it is read without a lock).
    nonisolated(unsafe) public static var handler: Handler?
}

/// Stops, naming the layer and the argument, unless each `(name, value, minimum)` has
/// `value >= minimum`: `requireLayer("Conv2d", ("stride", 0, 1))` → "Conv2d: stride must be at
/// least 1, got 0".
func requireLayer(_ layer: String, _ arguments: (String, Int, Int)...) {
    for (name, value, minimum) in arguments where value < minimum {
        stop("\(layer): \(name) must be \(minimum == 0 ? "non-negative" : minimum == 1 ? "positive" : "at least \(minimum)"), got \(value)")
    }
}

/// Stops the program with a shape error's message; ops use it where throwing would make every
/// arithmetic expression need `try`. Validate user input with `Shapes` first to get a thrown error.
func check<R>(_ body: () throws -> R) -> R {
    do { return try body() } catch { stop("\(error)") }
}
