import Foundation

/// Every regular file below `root`, as paths relative to it, sorted; empty when `root` does not exist.
package func regularFiles(under root: String) -> [String] {
    (FileManager.default.enumerator(atPath: root)?.compactMap { $0 as? String } ?? []).filter { relative in
        var isDirectory: ObjCBool = false
        return FileManager.default.fileExists(atPath: root + "/" + relative, isDirectory: &isDirectory)
            && !isDirectory.boolValue
    }.sorted()
}
