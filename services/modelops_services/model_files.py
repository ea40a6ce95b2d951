"""The files of a model directory, by name: no heavy imports, so the fetch and resolve
commands (a pod's start) can name them without loading numpy or pandas."""

METADATA = "metadata.json"
PROFILE = "profile.json"
MODEL_FILES = {"sklearn": "model.joblib", "xgboost": "model.ubj"}  # the file each framework loads
REQUIRED = ("name", "version", "framework", "task", "features")
