import XCTest
import Foundation

/// A test case whose runs go into a fresh temporary directory (`root`), removed afterwards.
class RunDirectoryTestCase: XCTestCase {
    var root = ""

    override func setUpWithError() throws {
        root = NSTemporaryDirectory() + "ember-\(type(of: self))-\(UUID().uuidString)"
        try FileManager.default.createDirectory(atPath: root, withIntermediateDirectories: true)
    }

    override func tearDownWithError() throws { try? FileManager.default.removeItem(atPath: root) }

    /// A file of run `run`.
    func file(_ run: String, _ name: String) -> Data? { FileManager.default.contents(atPath: root + "/" + run + "/" + name) }
}
