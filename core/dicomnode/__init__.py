"""The DICOM node: a pynetdicom storage SCP that scores received chest radiographs through
``core.services.imaging`` and sends results back as DICOM (docs/dicom.md).

    scp        the listener: C-ECHO, C-STORE -> screen, write, index, queue
    admission  what is accepted (chest CR/DX/SC, decodable transfer syntaxes), sender names
    worker     the background thread: diagnose -> results -> index -> audit
    results    the Secondary Capture (Grad-CAM, burned-in warning) and Comprehensive SR (highdicom)
    (core.imaging.dicom_index holds the per-instance status (SQLite) and the files under
    $LUCIDDX_HOME/dicom/; core.services.worklist is what front ends show: entries(), describe())
    pacs       optional C-STORE of results to LUCIDDX_PACS
"""
