/// An option PyTorch spells as a string (`approximate="tanh"`, `activation="gelu"`): a Swift
/// enum that a string literal can name too, so both `.tanh` and `"tanh"` work. A literal that
/// names no case stops with the choices.
public protocol StringOption: RawRepresentable, CaseIterable, ExpressibleByStringLiteral where RawValue == String {}

extension StringOption {
    public init(stringLiteral value: String) {
        guard let v = Self(rawValue: value) else {
            stop("\(Self.self): \"\(value)\" is not one of \(Self.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", "))")
        }
        self = v
    }
}
