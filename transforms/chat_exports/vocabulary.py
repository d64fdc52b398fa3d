"""What phones write in place of a message, per language: data, so adding a language is adding rows.

Texts are stored as WhatsApp writes them; matching ignores case, bidi marks, surrounding spaces
and a final full stop (iOS ends some with "." where Android does not). Entries the module
`UNVERIFIED` lists are the most plausible WhatsApp wording, not yet seen in a real export.
"""

from __future__ import annotations

# kind -> what the placeholder means for `message_type` (`media`: Android does not say which).
KINDS = (
    "media",
    "image",
    "video",
    "audio",
    "sticker",
    "document",
    "deleted",
    "poll",
    "location",
    "contacts",
    "waiting",
)

# language -> kind -> whole-message texts (exact, after normalising).
EXACT: dict[str, dict[str, tuple[str, ...]]] = {
    "en": {
        "media": ("<Media omitted>", "<View once media omitted>"),
        "image": ("image omitted", "photo omitted", "view once photo omitted"),
        "video": ("video omitted", "GIF omitted", "view once video omitted"),
        "audio": ("audio omitted", "voice message omitted", "view once voice message omitted"),
        "sticker": ("sticker omitted",),
        "deleted": ("This message was deleted", "You deleted this message"),
        "contacts": ("Contact card omitted",),
        "location": ("live location shared", "Live location shared"),
        "waiting": (
            "Waiting for this message",
            "Waiting for this message. This may take a while",
            "Waiting for this message. Check your phone",
        ),
    },
    "hi": {
        "media": ("<मीडिया के बिना>", "<मीडिया छोड़ दिया गया>"),
        "image": ("इमेज छोड़ी गई", "फ़ोटो छोड़ी गई"),
        "video": ("वीडियो छोड़ा गया", "GIF छोड़ा गया"),
        "audio": ("ऑडियो छोड़ा गया",),
        "sticker": ("स्टिकर छोड़ा गया",),
        "deleted": ("यह मैसेज हटा दिया गया था", "आपने यह मैसेज हटा दिया"),
        "contacts": ("संपर्क कार्ड छोड़ा गया",),
        "waiting": ("इस मैसेज का इंतज़ार किया जा रहा है. इसमें थोड़ा समय लग सकता है",),
    },
    "mr": {
        "media": ("<मीडिया वगळले>",),
        "image": ("इमेज वगळली",),
        "video": ("व्हिडिओ वगळला",),
        "audio": ("ऑडिओ वगळला",),
        "sticker": ("स्टिकर वगळले",),
        "deleted": ("हा मेसेज हटवला गेला", "तुम्ही हा मेसेज हटवला"),
        "contacts": ("संपर्क कार्ड वगळले",),
        "waiting": ("या मेसेजची प्रतीक्षा करत आहे. यास थोडा वेळ लागू शकतो",),
    },
    "ta": {
        "media": ("<மீடியா தவிர்க்கப்பட்டது>",),
        "image": ("படம் தவிர்க்கப்பட்டது",),
        "video": ("வீடியோ தவிர்க்கப்பட்டது",),
        "audio": ("ஆடியோ தவிர்க்கப்பட்டது",),
        "sticker": ("ஸ்டிக்கர் தவிர்க்கப்பட்டது",),
        "deleted": ("இந்த மெசேஜ் நீக்கப்பட்டது", "இந்த மெசேஜை நீக்கினீர்கள்"),
        "contacts": ("தொடர்பு அட்டை தவிர்க்கப்பட்டது",),
        "waiting": ("இந்த மெசேஜுக்காகக் காத்திருக்கிறது. இதற்குச் சிறிது நேரம் ஆகலாம்",),
    },
    "te": {
        "media": ("<మీడియా విస్మరించబడింది>",),
        "image": ("చిత్రం విస్మరించబడింది",),
        "video": ("వీడియో విస్మరించబడింది",),
        "audio": ("ఆడియో విస్మరించబడింది",),
        "sticker": ("స్టిక్కర్ విస్మరించబడింది",),
        "deleted": ("ఈ మెసేజ్ తొలగించబడింది", "మీరు ఈ మెసేజ్‌ను తొలగించారు"),
        "contacts": ("కాంటాక్ట్ కార్డ్ విస్మరించబడింది",),
        "waiting": ("ఈ మెసేజ్ కోసం వేచి ఉంది. దీనికి కొంత సమయం పట్టవచ్చు",),
    },
    "bn": {
        "media": ("<মিডিয়া বাদ দেওয়া হয়েছে>",),
        "image": ("ছবি বাদ দেওয়া হয়েছে",),
        "video": ("ভিডিও বাদ দেওয়া হয়েছে",),
        "audio": ("অডিও বাদ দেওয়া হয়েছে",),
        "sticker": ("স্টিকার বাদ দেওয়া হয়েছে",),
        "deleted": ("এই মেসেজটি মুছে ফেলা হয়েছে", "আপনি এই মেসেজটি মুছে ফেলেছেন"),
        "contacts": ("কন্টাক্ট কার্ড বাদ দেওয়া হয়েছে",),
        "waiting": ("এই মেসেজের জন্য অপেক্ষা করা হচ্ছে। এতে কিছুটা সময় লাগতে পারে",),
    },
    "gu": {
        "media": ("<મીડિયા છોડી દેવાયું>",),
        "image": ("છબી છોડી દેવાઈ",),
        "video": ("વીડિયો છોડી દેવાયો",),
        "audio": ("ઑડિયો છોડી દેવાયો",),
        "sticker": ("સ્ટિકર છોડી દેવાયું",),
        "deleted": ("આ મેસેજ ડિલીટ કરવામાં આવ્યો હતો", "તમે આ મેસેજ ડિલીટ કર્યો"),
        "contacts": ("સંપર્ક કાર્ડ છોડી દેવાયું",),
        "waiting": ("આ મેસેજની રાહ જોવાઈ રહી છે. આમાં થોડો સમય લાગી શકે છે",),
    },
    "kn": {
        "media": ("<ಮೀಡಿಯಾ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ>",),
        "image": ("ಚಿತ್ರ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ",),
        "video": ("ವೀಡಿಯೊ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ",),
        "audio": ("ಆಡಿಯೊ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ",),
        "sticker": ("ಸ್ಟಿಕ್ಕರ್ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ",),
        "deleted": ("ಈ ಸಂದೇಶವನ್ನು ಅಳಿಸಲಾಗಿದೆ", "ನೀವು ಈ ಸಂದೇಶವನ್ನು ಅಳಿಸಿದ್ದೀರಿ"),
        "contacts": ("ಸಂಪರ್ಕ ಕಾರ್ಡ್ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ",),
        "waiting": ("ಈ ಸಂದೇಶಕ್ಕಾಗಿ ಕಾಯಲಾಗುತ್ತಿದೆ. ಇದಕ್ಕೆ ಸ್ವಲ್ಪ ಸಮಯ ತೆಗೆದುಕೊಳ್ಳಬಹುದು",),
    },
    "ml": {
        "media": ("<മീഡിയ ഒഴിവാക്കി>",),
        "image": ("ചിത്രം ഒഴിവാക്കി",),
        "video": ("വീഡിയോ ഒഴിവാക്കി",),
        "audio": ("ഓഡിയോ ഒഴിവാക്കി",),
        "sticker": ("സ്റ്റിക്കർ ഒഴിവാക്കി",),
        "deleted": ("ഈ സന്ദേശം ഇല്ലാതാക്കി", "നിങ്ങൾ ഈ സന്ദേശം ഇല്ലാതാക്കി"),
        "contacts": ("കോൺടാക്റ്റ് കാർഡ് ഒഴിവാക്കി",),
        "waiting": ("ഈ സന്ദേശത്തിനായി കാത്തിരിക്കുന്നു. ഇതിന് കുറച്ച് സമയമെടുത്തേക്കാം",),
    },
    "de": {
        "media": ("<Medien ausgeschlossen>", "<Medien weggelassen>"),
        "image": ("Bild weggelassen",),
        "video": ("Video weggelassen", "GIF weggelassen"),
        "audio": ("Audio weggelassen",),
        "sticker": ("Sticker weggelassen",),
        "deleted": ("Diese Nachricht wurde gelöscht", "Du hast diese Nachricht gelöscht"),
        "contacts": ("Kontaktkarte weggelassen",),
        "location": ("Live-Standort geteilt",),
        "waiting": ("Warten auf diese Nachricht. Dies kann etwas dauern",),
    },
    "es": {
        "media": ("<Multimedia omitido>",),
        "image": ("imagen omitida",),
        "video": ("video omitido", "GIF omitido"),
        "audio": ("audio omitido",),
        "sticker": ("sticker omitido",),
        "deleted": (
            "Se eliminó este mensaje",
            "Eliminaste este mensaje",
            "Este mensaje fue eliminado",
        ),
        "contacts": ("tarjeta de contacto omitida",),
        "location": ("ubicación en tiempo real compartida",),
        "waiting": ("Esperando este mensaje. Esto puede tomar tiempo",),
    },
    "pt": {
        "media": ("<Mídia oculta>", "<Multimédia omitida>"),
        "image": ("imagem ocultada",),
        "video": ("vídeo omitido", "GIF omitido"),
        "audio": ("áudio ocultado",),
        "sticker": ("figurinha omitida",),
        "deleted": ("Mensagem apagada", "Você apagou esta mensagem", "Esta mensagem foi apagada"),
        "contacts": ("cartão de contato omitido",),
        "location": ("localização em tempo real compartilhada",),
        "waiting": ("Aguardando mensagem. Isso pode levar alguns instantes",),
    },
    "fr": {
        "media": ("<Médias omis>",),
        "image": ("image absente",),
        "video": ("vidéo absente", "GIF retiré"),
        "audio": ("audio omis",),
        "sticker": ("sticker omis",),
        "deleted": ("Ce message a été supprimé", "Vous avez supprimé ce message"),
        "contacts": ("fiche contact omise",),
        "location": ("position en direct partagée",),
        "waiting": ("En attente de ce message. Cela peut prendre du temps",),
    },
}

# iOS writes a document as "<file name> • <pages> document omitted": the ending names it.
DOCUMENT_ENDINGS = (
    "document omitted",
    "दस्तावेज़ छोड़ा गया",
    "दस्तऐवज वगळला",
    "ஆவணம் தவிர்க்கப்பட்டது",
    "పత్రం విస్మరించబడింది",
    "ডকুমেন্ট বাদ দেওয়া হয়েছে",
    "દસ્તાવેજ છોડી દેવાયો",
    "ಡಾಕ್ಯುಮೆಂಟ್ ಬಿಟ್ಟುಬಿಡಲಾಗಿದೆ",
    "ഡോക്യുമെന്റ് ഒഴിവാക്കി",
    "Dokument weggelassen",
    "documento omitido",
    "document omis",
)

# An attached file (an export "with media"): Android "<file> (file attached)", iOS
# "<attached: <file>>"; the file's extension gives the kind.
ATTACHED_SUFFIXES = (
    "file attached",
    "फ़ाइल अटैच की गई",
    "फाइल जोडली",
    "கோப்பு இணைக்கப்பட்டது",
    "ఫైల్ జోడించబడింది",
    "ফাইল সংযুক্ত",
    "ફાઇલ જોડેલ છે",
    "ಫೈಲ್ ಲಗತ್ತಿಸಲಾಗಿದೆ",
    "ഫയൽ അറ്റാച്ച് ചെയ്തു",
    "Datei angehängt",
    "archivo adjunto",
    "arquivo anexado",
    "fichier joint",
)
ATTACHED_PREFIXES = ("attached", "Anhang", "adjunto", "anexado", "pièce jointe", "संलग्न")

# Structured messages whose first line names them: "POLL:" then the question and options,
# "location: <maps url>".
POLL_HEADS = (
    "POLL", "पोल", "मतदान", "கருத்துக்கணிப்பு", "పోల్", "পোল", "મતદાન", "ಸಮೀಕ್ಷೆ", "വോട്ടെടുപ്പ്",
    "UMFRAGE", "ENCUESTA", "ENQUETE", "SONDAGE",
)  # fmt: skip
LOCATION_HEADS = (
    "location", "लोकेशन", "स्थान", "இருப்பிடம்", "లొకేషన్", "লোকেশন", "લોકેશન", "ಸ್ಥಳ", "ലൊക്കേഷൻ",
    "Standort", "ubicación", "localização", "position",
)  # fmt: skip

# The marker an edited message ends with.
EDITED_MARKERS = (
    "<This message was edited>",
    "<यह मैसेज एडिट किया गया था>",
    "<हा मेसेज संपादित केला होता>",
    "<இந்த மெசேஜ் திருத்தப்பட்டது>",
    "<ఈ మెసేజ్ ఎడిట్ చేయబడింది>",
    "<এই মেসেজটি এডিট করা হয়েছে>",
    "<આ મેસેજમાં ફેરફાર કરવામાં આવ્યો હતો>",
    "<ಈ ಸಂದೇಶವನ್ನು ಎಡಿಟ್ ಮಾಡಲಾಗಿದೆ>",
    "<ഈ സന്ദേശം എഡിറ്റ് ചെയ്തു>",
    "<Diese Nachricht wurde bearbeitet>",
    "<Se editó este mensaje.>",
    "<Mensagem editada>",
    "<Ce message a été modifié>",
)

# Notices: regular expressions for a whole notice (names are `.+`). They only classify lines
# that have no known sender (Android) or whose text starts with U+200E (iOS): a customer who types
# "Meena left" is still a message.
NOTICES: dict[str, tuple[str, ...]] = {
    "en": (
        r"Messages and calls are end-to-end encrypted\..*",
        r"Messages (?:to this (?:group|chat)|you send to this (?:group|chat)(?: and calls)?)"
        r" are now secured with end-to-end encryption\..*",
        r"(?:Your security code with .+|.+'s security code) changed\..*",
        r".+ added .+",
        r".+ removed .+",
        r".+ left",
        r".+ joined using this group's invite link",
        r"You were added",
        r"You(?:'re| are) now an admin",
        r".+ created (?:group|this group) .*",
        r".+ changed (?:the subject|the group name|this group's icon|the group description"
        r"|this group's settings|their phone number).*",
        r".+ (?:deleted this group's icon|changed to .+)",
        r"Missed (?:group )?(?:voice|video) call.*",
        r"(?:.+ (?:turned (?:on|off)|uses|updated) disappearing messages"
        r"|Disappearing messages were turned (?:on|off)).*",
        r".+ (?:blocked|unblocked) this contact.*",
        r"This (?:chat|business) is (?:with|using) .+",
        r".+ is a contact",
    ),
    "hi": (
        r"मैसेज और कॉल एंड-टू-एंड एन्क्रिप्टेड हैं.*",
        r".+ ने .+ को जोड़ा",
        r".+ ने ग्रुप छोड़ दिया",
        r".+ के साथ आपका सुरक्षा कोड बदल गया है.*",
        r".+ ने ग्रुप .+ बनाया",
        r"आपने ग्रुप .+ बनाया",
        r"छूटी हुई (?:वॉइस|वीडियो) कॉल",
        r".+ ने गायब होने वाले मैसेज .+",
    ),
    "mr": (
        r"मेसेज आणि कॉल्स एंड-टू-एंड एन्क्रिप्टेड आहेत.*",
        r".+ ने .+ ला जोडले",
        r".+ ने ग्रुप सोडला",
        r".+ सह तुमचा सुरक्षा कोड बदलला आहे.*",
        r"तुम्ही ग्रुप .+ तयार केला",
        r"मिस्ड (?:व्हॉइस|व्हिडिओ) कॉल",
    ),
    "ta": (
        r"மெசேஜ்களும் அழைப்புகளும் முழுமையாக என்க்ரிப்ட் செய்யப்பட்டுள்ளன.*",
        r".+ .+ஐச் சேர்த்தார்",
        r".+ வெளியேறினார்",
        r".+ உடனான உங்கள் பாதுகாப்புக் குறியீடு மாறியுள்ளது.*",
        r"தவறிய (?:குரல்|வீடியோ) அழைப்பு",
    ),
    "te": (
        r"మెసేజ్‌లు మరియు కాల్స్ ఎండ్-టు-ఎండ్ ఎన్‌క్రిప్ట్ చేయబడ్డాయి.*",
        r".+ .+ను జోడించారు",
        r".+ నిష్క్రమించారు",
        r".+తో మీ సెక్యూరిటీ కోడ్ మారింది.*",
        r"మిస్డ్ (?:వాయిస్|వీడియో) కాల్",
    ),
    "bn": (
        r"মেসেজ এবং কল এন্ড-টু-এন্ড এনক্রিপ্টেড.*",
        r".+ .+কে যোগ করেছেন",
        r".+ চলে গেছেন",
        r".+ এর সাথে আপনার নিরাপত্তা কোড পরিবর্তিত হয়েছে.*",
        r"মিসড (?:ভয়েস|ভিডিও) কল",
    ),
    "gu": (
        r"મેસેજ અને કૉલ એન્ડ-ટૂ-એન્ડ એન્ક્રિપ્ટેડ છે.*",
        r".+ એ .+ને ઉમેર્યા",
        r".+ નીકળી ગયા",
        r".+ સાથેનો તમારો સુરક્ષા કોડ બદલાયો.*",
        r"મિસ્ડ (?:વૉઇસ|વીડિયો) કૉલ",
    ),
    "kn": (
        r"ಸಂದೇಶಗಳು ಮತ್ತು ಕರೆಗಳು ಎಂಡ್-ಟು-ಎಂಡ್ ಎನ್‌ಕ್ರಿಪ್ಟ್ ಆಗಿವೆ.*",
        r".+ .+ ಅವರನ್ನು ಸೇರಿಸಿದ್ದಾರೆ",
        r".+ ತೊರೆದಿದ್ದಾರೆ",
        r".+ ಜೊತೆಗಿನ ನಿಮ್ಮ ಸುರಕ್ಷತಾ ಕೋಡ್ ಬದಲಾಗಿದೆ.*",
        r"ಮಿಸ್ಡ್ (?:ವಾಯ್ಸ್|ವೀಡಿಯೊ) ಕರೆ",
    ),
    "ml": (
        r"സന്ദേശങ്ങളും കോളുകളും എൻഡ്-ടു-എൻഡ് എൻക്രിപ്റ്റ് ചെയ്തിരിക്കുന്നു.*",
        r".+ .+ നെ ചേർത്തു",
        r".+ പുറത്തുപോയി",
        r".+ എന്നയാളുമായുള്ള നിങ്ങളുടെ സുരക്ഷാ കോഡ് മാറി.*",
        r"മിസ്ഡ് (?:വോയ്സ്|വീഡിയോ) കോൾ",
    ),
    "de": (
        r"Nachrichten und Anrufe sind Ende-zu-Ende-verschlüsselt\..*",
        r".+ hat .+ hinzugefügt",
        r".+ hat die Gruppe verlassen",
        r".+ hat .+ entfernt",
        r"(?:Deine Sicherheitsnummer für .+|Die Sicherheitsnummer von .+) hat sich geändert\..*",
        r"(?:Du hast|.+ hat) die Gruppe .+ erstellt",
        r"Verpasster (?:Sprach|Video)anruf",
        r".+ hat selbstlöschende Nachrichten .+",
    ),
    "es": (
        r"Los mensajes y las llamadas están cifrados de extremo a extremo\..*",
        r".+ añadió a .+",
        r".+ salió del grupo",
        r".+ eliminó a .+",
        r"Tu código de seguridad con .+ cambió\..*",
        r".+ creó el grupo .+",
        r"Creaste el grupo .+",
        r"Llamada (?:de voz|de video) perdida",
        r".+ activó los mensajes temporales.*",
    ),
    "pt": (
        r"As mensagens e as chamadas são protegidas com a criptografia de ponta a ponta.*",
        r".+ adicionou .+",
        r".+ saiu",
        r".+ removeu .+",
        r"Seu código de segurança com .+ mudou\..*",
        r"(?:Você criou|.+ criou) o grupo .+",
        r"Chamada de (?:voz|vídeo) perdida",
        r".+ ativou as mensagens temporárias.*",
    ),
    "fr": (
        r"Les messages et les appels sont chiffrés de bout en bout\..*",
        r".+ a ajouté .+",
        r".+ est parti(?:e)?",
        r".+ a retiré .+",
        r"Votre code de sécurité avec .+ a changé\..*",
        r"(?:Vous avez|.+ a) créé le groupe .+",
        r"Appel (?:vocal|vidéo) manqué",
        r".+ a activé les messages éphémères.*",
    ),
}

# Everything but English, German "<Medien ausgeschlossen>"/"Bild weggelassen"/"(Datei angehängt)",
# Spanish "<Multimedia omitido>"/"imagen omitida", Portuguese "<Mídia oculta>"/"Mensagem apagada"
# and French "<Médias omis>"/"Ce message a été supprimé" is the most plausible wording, unverified.
UNVERIFIED = tuple(language for language in EXACT if language != "en")
