import Foundation

/// The end-of-run report: loss and accuracy curves drawn as SVG (no plotting dependency) and a
/// small HTML page with the summary.
enum Report {
    static func svg(history: [EpochRecord], testAccuracy: Double?) -> String {
        // A task's own metrics get a chart each, two to a row, below loss and accuracy.
        let extras = Array(Set(history.flatMap { $0.extra.keys }.map { String($0.drop { $0 != "_" }.dropFirst()) })).sorted()
        let width = 920.0, height = 360.0 * Double(1 + (extras.count + 1) / 2)
        var out = """
        <svg xmlns="http://www.w3.org/2000/svg" width="\(Int(width))" height="\(Int(height))" font-family="sans-serif" font-size="12">
        <rect width="100%" height="100%" fill="white"/>

        """
        let epochs = history.map { Double($0.epoch + 1) }
        out += panel(x: 50, title: "loss", epochs: epochs, series: [
            ("train", "#d9480f", history.map(\.trainLoss)),
            ("validation", "#1971c2", history.map { $0.valLoss ?? .nan }),
        ], marker: nil)
        out += panel(x: 510, title: "accuracy", epochs: epochs, series: [
            ("train", "#d9480f", history.map { $0.trainAccuracy ?? .nan }),
            ("validation", "#1971c2", history.map { $0.valAccuracy ?? .nan }),
        ], marker: testAccuracy.map { ("test", $0) })
        for (i, name) in extras.enumerated() {
            out += "<g transform=\"translate(0, \(360 * (1 + i / 2)))\">\n"
            out += panel(x: i % 2 == 0 ? 50 : 510, title: name, epochs: epochs, series: [
                ("train", "#d9480f", history.map { $0.extra["train_\(name)"] ?? .nan }),
                ("validation", "#1971c2", history.map { $0.extra["val_\(name)"] ?? .nan }),
            ], marker: nil)
            out += "</g>\n"
        }
        return out + "</svg>\n"
    }

    /// One chart 380×280 at horizontal offset `x`.
    private static func panel(x: Double, title: String, epochs: [Double], series: [(String, String, [Double])],
                              marker: (String, Double)?) -> String {
        let w = 380.0, h = 270.0, top = 40.0
        let values = series.flatMap(\.2).filter { $0.isFinite } + (marker.map { [$0.1] } ?? [])
        guard let lo0 = values.min(), let hi0 = values.max(), let maxEpoch = epochs.max() else {
            return "<text x=\"\(x)\" y=\"60\">no \(title) data</text>\n"
        }
        let pad = max((hi0 - lo0) * 0.08, 1e-6)
        // Losses and accuracies are never negative, accuracies never above 1: keep the axis there.
        let lo = lo0 >= 0 ? max(0, lo0 - pad) : lo0 - pad
        let hi = title == "accuracy" ? min(1, hi0 + pad) : hi0 + pad
        let minEpoch = epochs.min() ?? 1
        func px(_ e: Double) -> Double { x + (maxEpoch == minEpoch ? w / 2 : (e - minEpoch) / (maxEpoch - minEpoch) * w) }
        func py(_ v: Double) -> Double { top + h - (v - lo) / (hi - lo) * h }
        var s = "<text x=\"\(x)\" y=\"24\" font-size=\"15\" font-weight=\"bold\">\(title)</text>\n"
        s += "<rect x=\"\(x)\" y=\"\(top)\" width=\"\(w)\" height=\"\(h)\" fill=\"none\" stroke=\"#adb5bd\"/>\n"
        for i in 0...4 {
            let v = lo + (hi - lo) * Double(i) / 4
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"end\" fill=\"#495057\">%.3g</text>\n", x - 4, py(v) + 4, v)
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#f1f3f5\"/>\n", x, x + w, py(v), py(v))
        }
        s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#495057\">epoch</text>\n", x + w / 2, top + h + 30)
        for e in Set(epochs.map { Int($0) }).sorted() where epochs.count <= 20 || e % max(1, epochs.count / 10) == 0 {
            s += String(format: "<text x=\"%.1f\" y=\"%.1f\" text-anchor=\"middle\" fill=\"#495057\">%d</text>\n", px(Double(e)), top + h + 15, e)
        }
        // The legend sits above the plot, right of the title, where no curve can hide it.
        var legendX = x + 110
        for (name, color, ys) in series where ys.contains(where: { $0.isFinite }) {
            let points = zip(epochs, ys).filter { $0.1.isFinite }.map { String(format: "%.1f,%.1f", px($0.0), py($0.1)) }
            s += "<polyline fill=\"none\" stroke=\"\(color)\" stroke-width=\"2\" points=\"\(points.joined(separator: " "))\"/>\n"
            for p in points {
                let xy = p.split(separator: ",")
                s += "<circle cx=\"\(xy[0])\" cy=\"\(xy[1])\" r=\"2.5\" fill=\"\(color)\"/>\n"
            }
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"20\" y2=\"20\" stroke=\"%@\" stroke-width=\"2\"/>\n", legendX, legendX + 18, color)
            s += String(format: "<text x=\"%.1f\" y=\"24\" fill=\"%@\">%@</text>\n", legendX + 22, color, name)
            legendX += 95
        }
        if let (name, v) = marker {
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"%.1f\" y2=\"%.1f\" stroke=\"#2f9e44\" stroke-dasharray=\"5,4\"/>\n", x, x + w, py(v), py(v))
            s += String(format: "<line x1=\"%.1f\" x2=\"%.1f\" y1=\"20\" y2=\"20\" stroke=\"#2f9e44\" stroke-dasharray=\"5,4\"/>\n", legendX, legendX + 18)
            s += String(format: "<text x=\"%.1f\" y=\"24\" fill=\"#2f9e44\">%@ %.4f</text>\n", legendX + 22, name, v)
        }
        return s
    }

    static func html(summary: [String: Any], timeline: Bool = false) -> String {
        let rows = summary.keys.sorted().map { key -> String in
            let v = summary[key]!
            let text = (v as? Double).map { String(format: "%.6g", $0) } ?? "\(v)"
            return "<tr><th>\(key)</th><td>\(text)</td></tr>"
        }.joined(separator: "\n")
        return """
        <!doctype html>
        <html><head><meta charset="utf-8"><title>Ember training run</title>
        <style>body{font-family:sans-serif;margin:2em}th{text-align:left;padding-right:2em}td,th{padding:2px 8px}</style>
        </head><body>
        <h1>Ember training run</h1>
        <p><img src="report.svg" alt="loss and accuracy curves"></p>
        \(timeline ? "<h2>Timeline of the first traced steps</h2>\n<p><img src=\"timeline.svg\" alt=\"where a step's time goes, per rank\"></p>" : "")
        <table>
        \(rows)
        </table>
        <p>Per-epoch values: <a href="metrics.jsonl">metrics.jsonl</a>; configuration: <a href="config.json">config.json</a>.</p>
        </body></html>

        """
    }
}
