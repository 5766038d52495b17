"""wam: World-Action Models.

Robot policies that start from a video-prediction ("world") model and predict both future frames
and robot actions. The pipeline is data -> nn -> paradigms -> policy -> train/eval -> cli; see
README.md for the two commands and docs/ for the design.
"""

__version__ = "0.1.0"
