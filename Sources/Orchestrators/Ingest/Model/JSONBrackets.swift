/// Counts JSON bracket depth byte by byte, understanding strings and escapes: how ``JSONListStream`` finds where a
/// value ends.
struct JSONBrackets {
    /// Open `{` and `[` not yet closed; negative when there were more closing brackets than opening ones.
    private(set) var depth = 0
    private(set) var isInString = false
    private var isEscaped = false

    /// Counts `byte`; true when it closes the outermost bracket.
    mutating func feed(_ byte: UInt8) -> Bool {
        if isInString {
            if isEscaped {
                isEscaped = false
            } else if byte == UInt8(ascii: "\\") {
                isEscaped = true
            } else if byte == UInt8(ascii: "\"") {
                isInString = false
            }
        } else if byte == UInt8(ascii: "\"") {
            isInString = true
        } else if byte == UInt8(ascii: "{") || byte == UInt8(ascii: "[") {
            depth += 1
        } else if byte == UInt8(ascii: "}") || byte == UInt8(ascii: "]") {
            depth -= 1
            return depth == 0
        }
        return false
    }
}
