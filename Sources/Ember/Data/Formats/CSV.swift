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
        let data = try FileBytes.read(path)
        guard let text = String(data: data, encoding: .utf8) else { throw DataError.file(path, "is not UTF-8 text") }
        let (features, targets, columns) = try parse(text, path: path, labelColumn: labelColumn, header: header,
                                                     delimiter: delimiter, target: target)
        let n = targets.count
        let inputs = Tensor(features, shape: [n, columns - 1], dtype: .float32)
        switch target {
        case .classIndex:
            return TensorDataset(inputs: inputs, targets: Tensor(indices: targets.map { Int($0) }))
        case .value:
            return TensorDataset(inputs: inputs, targets: Tensor(targets, shape: [n, 1], dtype: .float32))
        }
    }

    static func parse(_ text: String, path: String, labelColumn: Int, header: Bool?, delimiter: Character,
                      target: TargetKind) throws -> (features: [Double], targets: [Double], columns: Int) {
        var features: [Double] = [], targets: [Double] = []
        var columns = -1, label = 0
        var lineNumber = 0
        for line in text.split(omittingEmptySubsequences: false, whereSeparator: \.isNewline) {
            lineNumber += 1
            let trimmed = line.trimmingCharacters(in: .whitespaces)
            if trimmed.isEmpty { continue }
            let cells = trimmed.split(separator: delimiter, omittingEmptySubsequences: false)
            if columns < 0 {
                columns = cells.count
                guard columns >= 2 else {
                    throw DataError.file(path, "line \(lineNumber) has \(columns) column; a sample needs features and a target")
                }
                label = labelColumn < 0 ? columns + labelColumn : labelColumn
                guard label >= 0 && label < columns else {
                    throw DataError.file(path, "label column \(labelColumn) does not exist (the file has \(columns) columns)")
                }
                let isHeader = header ?? cells.contains { Double($0.trimmingCharacters(in: .whitespaces)) == nil }
                if isHeader { continue }
            }
            guard cells.count == columns else {
                throw DataError.file(path, "line \(lineNumber) has \(cells.count) columns, expected \(columns)")
            }
            for (c, cell) in cells.enumerated() {
                let s = cell.trimmingCharacters(in: .whitespaces)
                guard let v = Double(s), v.isFinite else {
                    throw DataError.file(path, "line \(lineNumber), column \(c + 1): '\(s)' is not a number")
                }
                if c == label {
                    if target == .classIndex && (v < 0 || v != v.rounded()) {
                        throw DataError.file(path, "line \(lineNumber), column \(c + 1): label '\(s)' is not a class index (a non-negative integer)")
                    }
                    targets.append(v)
                } else {
                    features.append(v)
                }
            }
        }
        guard !targets.isEmpty else { throw DataError.file(path, "contains no data rows") }
        return (features, targets, columns)
    }
}
