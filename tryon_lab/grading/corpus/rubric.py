"""The rubric the corpus is made for: the course default with limits small enough for tiny bundles."""

CORPUS_RUBRIC = """\
# The grader corpus rubric: the course default with limits small enough for tiny bundles.
name = "tryon-lab grader corpus (tiny bundles)"

[limits]
max_file_bytes = 4_194_304        # 4 MiB: a tiny bundle's files are under 200 kB
max_total_bytes = 33_554_432      # 32 MiB
max_compression_ratio = 100.0
timeout_seconds = 300.0

[chunks]
max_chunk_bytes = 1_048_576       # 1 MiB
"""
