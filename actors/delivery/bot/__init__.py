"""The WeCom smart robot (智能机器人) over its long connection: members ask in their chat,
results come back to that chat. Plain modules, no Ray."""
