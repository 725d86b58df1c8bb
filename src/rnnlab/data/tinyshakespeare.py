"""Tiny Shakespeare (Karpathy's char-rnn corpus): 1,115,394 characters, 65 distinct.

``rnnlab train --data tinyshakespeare`` finds ``input.txt`` through
:func:`rnnlab.data.registry.fetch` (``--data-dir``, ``$RNNLAB_DATA_DIR``, the cache, or a
verified download).
"""

from rnnlab.data.registry import DatasetInfo, RemoteFile, register_dataset

TINYSHAKESPEARE = register_dataset(
    DatasetInfo(
        name="tinyshakespeare",
        files=(
            RemoteFile(
                "input.txt",
                urls=(
                    "https://raw.githubusercontent.com/karpathy/char-rnn/"
                    "6f9487a6fe5b420b7ca9afb0d7c078e37c1d1b4e/data/tinyshakespeare/input.txt",
                    "https://raw.githubusercontent.com/karpathy/char-rnn/master/data/"
                    "tinyshakespeare/input.txt",
                ),
                sha256=("86c4e6aa9db7c042ec79f339dcb96d42b0075e16b8fc2e86bf0ca57e2dc565ed",),
            ),
        ),
        citation="A. Karpathy, char-rnn (2015), https://github.com/karpathy/char-rnn",
        license="a subset of the works of Shakespeare (public domain); repository MIT",
        description="character-level language modelling corpus, ~1.1 MB, 65 characters",
    )
)
