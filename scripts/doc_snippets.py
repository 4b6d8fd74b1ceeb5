"""Writes every ```swift block of README.md and docs/*.md as a Swift file to type-check against
the built modules (launch/lib/docs.sh), so an example a user copies from the docs compiles.

A block is checked as written, with `import Ember`, `import EmberDistributed` and
`import EmberTrainer` in front. Two markers, in an HTML comment right before the block (it does
not show on GitHub), say what the block leaves out:

    <!-- snippet context:
    let x = Tensor.randn([4, 10], requiresGrad: true)
    -->

declares what the block uses but does not define (a model, a tensor), and

    <!-- snippet skip: a Package.swift -->

leaves a block out, with the reason;

    <!-- snippet continues: let task = Regression() -->

checks a block after the page's first block (and what follows the colon, if anything), for
examples that build on a page's first one. A line that is only `...` and a body `{ ... }` stand for
code the reader supplies and are dropped. A block with `@main` is checked as a library file.

    python3 scripts/doc_snippets.py OUT_DIR    # prints one line per file: NAME.swift script|library
"""
import glob
import os
import re
import sys

FENCE = re.compile(r"^```swift\n(.*?)^```", re.S | re.M)
MARKER = re.compile(r"<!-- snippet (context|skip|continues):?(.*?)-->\s*$", re.S)
IMPORTS = ["import Ember", "import EmberDistributed", "import EmberTrainer"]


def blocks(path):
    """(index, code, marker kind, marker text, line number) for each swift block of a file."""
    text = open(path).read()
    for i, m in enumerate(FENCE.finditer(text)):
        preceding = text[:m.start()].rstrip()
        before = MARKER.match(preceding[preceding.rfind("<!--"):] + "\n") if preceding.endswith("-->") else None
        kind, note = (before.group(1), before.group(2).strip()) if before else (None, "")
        yield i, m.group(1), kind, note, text.count("\n", 0, m.start()) + 1


def source(code, context):
    """The file to type-check: imports, the block's own imports, the context, the block."""
    lines = [l for l in (context + "\n" + code).splitlines() if l.strip() != "..."]
    own = [l for l in lines if l.startswith("import ")]
    body = [l.replace("{ ... }", "{ }") for l in lines if not l.startswith("import ")]
    return "\n".join(dict.fromkeys(IMPORTS + own)) + "\n" + "\n".join(body) + "\n"


def main(out):
    os.makedirs(out, exist_ok=True)
    for path in ["README.md"] + sorted(glob.glob("docs/*.md")):
        first = None  # the page's first block with its context, for "continues"
        for i, code, kind, note, line in blocks(path):
            name = f"{os.path.basename(path)[:-3]}_{i}".replace("-", "_")
            if kind == "skip":
                print(f"{name}.swift skip {path}:{line} ({note})")
                continue
            context = {"context": note, "continues": (first or "") + "\n" + note}.get(kind, "")
            first = first if first is not None else context + "\n" + code
            open(os.path.join(out, name + ".swift"), "w").write(f"// {path}:{line}\n" + source(code, context))
            print(f"{name}.swift {'library' if '@main' in code else 'script'} {path}:{line}")


if __name__ == "__main__":
    main(sys.argv[1])
