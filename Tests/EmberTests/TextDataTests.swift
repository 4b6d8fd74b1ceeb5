import XCTest
@testable import Ember

final class TextDataTests: XCTestCase {
    func testCharTokenizerRoundTripsAndNamesUnknownCharacters() throws {
        let t = CharTokenizer(corpus: "hello world")
        XCTAssertEqual(t.symbols, [" ", "d", "e", "h", "l", "o", "r", "w"])
        XCTAssertEqual(t.decode(try t.encode("hold")), "hold")
        XCTAssertThrowsError(try t.encode("hat")) { XCTAssertTrue("\($0)".contains("\"a\""), "\($0)") }
        let back = try SavedTokenizer.decode(SavedTokenizer.encode(t))
        XCTAssertEqual((back as? CharTokenizer)?.symbols, t.symbols)
        XCTAssertTrue(try SavedTokenizer.decode(SavedTokenizer.encode(ByteTokenizer())) is ByteTokenizer)
    }

    func testByteTokenizerCoversAnyText() throws {
        let b = ByteTokenizer()
        XCTAssertEqual(b.vocabularySize, 256)
        XCTAssertEqual(b.decode(try b.encode("Ünïcode ✓")), "Ünïcode ✓")
    }

    func testTrainingWindowsStartAtEveryOffsetWithShiftedTargets() throws {
        let w = try TokenWindows(Array(0..<10), blockSize: 4)
        XCTAssertEqual(w.count, 6)
        let b = w.batch([0, 5])
        XCTAssertEqual(b.input.intScalars, [0, 1, 2, 3, 5, 6, 7, 8])
        XCTAssertEqual(b.target.intScalars, [1, 2, 3, 4, 6, 7, 8, 9])
    }

    /// Evaluation windows predict every next token exactly once, whatever the length.
    func testCoveringWindowsPredictEveryTokenOnce() throws {
        for n in 5...23 {
            let w = try TokenWindows(Array(0..<n), blockSize: 4, covering: true)
            let all = Array(0..<w.count)
            let targets = w.batch(all).target.intScalars.filter { $0 != TokenWindows.ignoreIndex }
            XCTAssertEqual(targets.sorted(), Array(1..<n), "n = \(n)")
            XCTAssertEqual(w.predictions(in: all), n - 1)
        }
    }

    func testTooShortTextIsAClearError() {
        XCTAssertThrowsError(try TokenWindows([1, 2, 3], blockSize: 3)) { XCTAssertTrue("\($0)".contains("too few"), "\($0)") }
    }
}
