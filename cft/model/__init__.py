"""Stage 2, model: frozen backbones split at the adapted layers (:mod:`.backbones`), the
module families with the PROTEUS module (:mod:`.modules`), per-task training
(:mod:`.train`) and the device (:mod:`.device`)."""
