"""Notebook 03's look inside Diffuse to Choose, one subject per module: which model (``models``), the
collage hint, the model's anatomy, FiLM, training logs and try-ons, the paper's tables, and the hint's
cost per step. They run the real ``DTCPipeline`` and the recipe's own functions, so what the notebook
shows is what ``tryon-lab train-dtc`` and ``tryon-lab tryon`` do.
"""
