import Foundation

/// Numeric CSV files: one sample per line, one column holding the target.
public enum CSV {
    /// What the target column holds.
    public enum TargetKind: Sendable {
        /// Integer class labels → an int64 target vector.
        case classIndex
        /// Real values → a float32 target `[N, 1]` (regression).
        case value
    }

    /// Loads a CSV file (optionally gzip-compressed) into features and targets.
    ///
    /// - Parameters:
    ///   - labelColumn: index of the target column; negative counts from the end (-1: last).
    ///   - header: whether the first line is a header; nil detects it (a non-numeric first line).
    /// - Throws: `DataError` naming the file, and the line and column of a bad cell.
    public static func load(_ path: String, labelColumn: Int = -1, header: Bool? = nil, delimiter: Character = ",",
                            target: TargetKind = .classIndex) throws -> TensorDataset {
        try decode(try FileBytes.read(path), path: path, labelColumn: labelColumn, header: header, delimiter: delimiter, target: target)
    }

    /// `load` for bytes already in memory (`path` names them in errors).
    public static func decode(_ data: Data, path: String = "<data>", labelColumn: Int = -1, header: Bool? = nil,
                              delimiter: Character = ",", target: TargetKind = .classIndex) throws -> TensorDataset {
        guard let sep = delimiter.asciiValue else { throw DataError("CSV delimiter must be an ASCII character, got '\(delimiter)'") }
        let table = try data.withUnsafeBytes { raw in
            try parse(raw.bindMemory(to: UInt8.self), path: path, labelColumn: labelColumn, header: header, delimiter: sep, target: target)
        }
        let n = table.targets.count
        let inputs = Tensor(table.features, shape: [n, table.columns - 1], dtype: .float32)
        switch target {
        case .classIndex:
            return TensorDataset(inputs: inputs, targets: Tensor(indices: table.targets.map { Int($0) }))
        case .value:
            return TensorDataset(inputs: inputs, targets: Tensor(table.targets, shape: [n, 1], dtype: .float32))
        }
    }

    struct Table {
        var features: [Double] = []
        var targets: [Double] = []
        var columns = -1

        /// One row: column `label` to the targets (checked as a class index when it is one), the
        /// rest to the features. `place` names the label's cell in errors.
        @inline(__always)
        mutating func append(_ cells: [Double], label: Int, target: TargetKind, at place: @autoclosure () -> String, path: String) throws {
            let v = cells[label]
            if target == .classIndex && (v < 0 || v != v.rounded()) {
                throw DataError.file(path, "\(place()): label '\(v)' is not a class index (a non-negative integer)")
            }
            if target == .classIndex && v > Double(DataLimits.maxClassIndex) {
                throw DataError.file(path, "\(place()): label \(v) is larger than any class index Ember takes (\(DataLimits.maxClassIndex))")
            }
            targets.append(v)
            features.append(contentsOf: cells[..<label])
            features.append(contentsOf: cells[(label + 1)...])
        }
    }

    /// Parses bytes directly (the bundled 4-million-cell file in well under a second).
    static func parse(_ bytes: UnsafeBufferPointer<UInt8>, path: String, labelColumn: Int, header: Bool?, delimiter: UInt8,
                      target: TargetKind) throws -> Table {
        var table = Table()
        var label = 0
        var lineNumber = 0
        var cells: [Double] = []
        var start = 0
        let count = bytes.count
        while start < count {
            var end = start
            while end < count && bytes[end] != 0x0A { end += 1 }
            lineNumber += 1
            var lineEnd = end
            if lineEnd > start && bytes[lineEnd - 1] == 0x0D { lineEnd -= 1 }
            defer { start = end + 1 }
            let line = UnsafeBufferPointer(rebasing: bytes[start..<lineEnd])
            if line.allSatisfy({ $0 == 0x20 || $0 == 0x09 }) { continue }
            let badCell = split(line, delimiter: delimiter, into: &cells)
            if table.columns < 0 {
                table.columns = cells.count
                guard table.columns >= 2 else {
                    throw DataError.file(path, "line \(lineNumber) has \(table.columns) column; a sample needs features and a target")
                }
                label = labelColumn < 0 ? table.columns + labelColumn : labelColumn
                guard label >= 0 && label < table.columns else {
                    throw DataError.file(path, "label column \(labelColumn) does not exist (the file has \(table.columns) columns)")
                }
                if header ?? (badCell != nil) { continue }
                table.features.reserveCapacity(count / 2)
            }
            guard cells.count == table.columns else {
                throw DataError.file(path, "line \(lineNumber) has \(cells.count) columns, expected \(table.columns)")
            }
            if let (column, text) = badCell {
                throw DataError.file(path, "line \(lineNumber), column \(column): '\(text)' is not a number")
            }
            try table.append(cells, label: label, target: target, at: "line \(lineNumber), column \(label + 1)", path: path)
        }
        guard !table.targets.isEmpty else { throw DataError.file(path, "contains no data rows") }
        return table
    }

    /// The line's cells into `cells` (a cell that is not a number as NaN); returns the first such
    /// cell's column (from 1) and text.
    @inline(__always)
    static func split(_ line: UnsafeBufferPointer<UInt8>, delimiter: UInt8, into cells: inout [Double]) -> (Int, String)? {
        cells.removeAll(keepingCapacity: true)
        var badCell: (Int, String)? = nil
        var cellStart = 0
        for i in 0...line.count where i == line.count || line[i] == delimiter {
            let cell = UnsafeBufferPointer(rebasing: line[cellStart..<i])
            if let v = number(cell) {
                cells.append(v)
            } else {
                if badCell == nil { badCell = (cells.count + 1, String(decoding: cell, as: UTF8.self).trimmingCharacters(in: .whitespaces)) }
                cells.append(.nan)
            }
            cellStart = i + 1
        }
        return badCell
    }

    /// A finite number from a cell: a fast path for plain integers, the full grammar otherwise.
    @inline(__always)
    static func number(_ cell: UnsafeBufferPointer<UInt8>) -> Double? {
        var lo = 0, hi = cell.count
        while lo < hi && (cell[lo] == 0x20 || cell[lo] == 0x09) { lo += 1 }
        while hi > lo && (cell[hi - 1] == 0x20 || cell[hi - 1] == 0x09) { hi -= 1 }
        guard lo < hi else { return nil }
        var value = 0, i = lo, negative = false
        if cell[i] == 0x2D { negative = true; i += 1 }
        if i < hi && hi - i <= 15 {
            var digits = true
            while i < hi {
                let d = Int(cell[i]) - 48
                if d < 0 || d > 9 { digits = false; break }
                value = value * 10 + d
                i += 1
            }
            if digits { return Double(negative ? -value : value) }
        }
        guard let v = Double(String(decoding: UnsafeBufferPointer(rebasing: cell[lo..<hi]), as: UTF8.self)), v.isFinite else { return nil }
        return v
    }
}
