"""Discord adapters for voice: receive (with DAVE), playback, the one sender thread for every guild.

May import the audio DSP and the metrics; never the Realtime client, the session, the shell or the cogs.

Packet path (pure, no discord): :mod:`.rtp` (RTP/RTCP), :mod:`.transport_crypto` (``aead_xchacha20_poly1305_rtpsize``),
:mod:`.jitter` (per-SSRC reordering and loss marking), :mod:`.room` (mixing and the speaker timeline).
Around discord.py/davey: :mod:`.dave` (the E2EE step), :mod:`.receiver` (datagram -> per-user PCM),
:mod:`.playback` (the ``AudioSource``), :mod:`.client` (the ``VoiceClient`` subclass tying it together).
"""
